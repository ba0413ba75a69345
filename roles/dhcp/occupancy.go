package dhcp

import "math"

// The allocator counts its live bindings as they change, so Status need not
// walk hundreds of thousands of them under the server's lock. A binding
// counts by its state (active or declined, whatever its expiry) from the
// moment it is stored at its address (setAddr) until it leaves or changes
// state; the same bindings are counted again by the second they expire
// (ending). What is live at a time is the count minus those whose second
// has come. After a sweep at now, no counted binding expires at or before
// now (each ran out is ended), so Status looks up only the seconds since
// (low): a few, with the sweeper running.

// occupancy is the allocator's running count of live bindings.
type occupancy struct {
	active, declined int
	// pools are the active bindings in each pool's range (a.pools' order).
	pools []int
	// ending counts the same bindings by expiry second and pool (or
	// globalActive, globalDeclined); entries that reach zero go.
	ending map[endKey]int32
	// low is below every counted binding's expiry.
	low int64
}

type endKey struct {
	at   int64
	pool int32
}

const (
	globalActive   int32 = -1
	globalDeclined int32 = -2
)

// setAddr makes b the binding of addr, keeping the counts.
func (a *allocator) setAddr(addr uint32, b *binding) {
	if old := a.byAddr[addr]; old != nil {
		a.count(old, -1)
	}
	a.byAddr[addr] = b
	a.count(b, 1)
}

// delAddr removes addr's binding, keeping the counts.
func (a *allocator) delAddr(addr uint32) {
	if old := a.byAddr[addr]; old != nil {
		a.count(old, -1)
		delete(a.byAddr, addr)
	}
}

// count adds (d 1) or removes (d -1) b, stored at its address, to the
// counts. Only what is live before its expiry counts, as in binding.live.
func (a *allocator) count(b *binding, d int) {
	if b.state == bindExpired {
		return
	}
	o := &a.occ
	if d > 0 && b.expires <= o.low {
		o.low = b.expires - 1
	}
	if b.state == bindDeclined {
		o.declined += d
		o.end(b.expires, globalDeclined, d)
		return
	}
	o.active += d
	o.end(b.expires, globalActive, d)
	for i, p := range a.pools {
		if p.contains(b.addr) {
			o.pools[i] += d
			o.end(b.expires, int32(i), d)
		}
	}
}

func (o *occupancy) end(at int64, pool int32, d int) {
	k := endKey{at, pool}
	if n := o.ending[k] + int32(d); n != 0 {
		o.ending[k] = n
	} else {
		delete(o.ending, k)
	}
}

// recount counts every binding again, for new pools.
func (a *allocator) recount() {
	a.occ = occupancy{pools: make([]int, len(a.pools)), ending: map[endKey]int32{}, low: math.MaxInt64}
	for _, b := range a.byAddr {
		a.count(b, 1)
	}
}

// swept says that no counted binding expires at or before now any more.
func (a *allocator) swept(now int64) {
	if now > a.occ.low {
		a.occ.low = now
	}
}

// live returns the live active and declined bindings at now, and the live
// active ones in each pool: what a walk of every binding would count.
func (o *occupancy) live(now int64) (active, declined int, pools []int) {
	active, declined = o.active, o.declined
	pools = append([]int(nil), o.pools...)
	sub := func(k endKey, n int32) {
		switch {
		case k.at > now:
		case k.pool == globalActive:
			active -= int(n)
		case k.pool == globalDeclined:
			declined -= int(n)
		case int(k.pool) < len(pools):
			pools[k.pool] -= int(n)
		}
	}
	if now <= o.low {
		return active, declined, pools
	}
	// The seconds since low, or every entry, whichever is fewer.
	if keys := len(pools) + 2; (now - o.low) <= int64(len(o.ending)/keys) {
		for at := o.low + 1; at <= now; at++ {
			for p := globalDeclined; p < int32(len(pools)); p++ {
				if n, ok := o.ending[endKey{at, p}]; ok {
					sub(endKey{at, p}, n)
				}
			}
		}
		return active, declined, pools
	}
	for k, n := range o.ending {
		sub(k, n)
	}
	return active, declined, pools
}
