package dhcp

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// walkOccupancy counts the live bindings by walking every one, as Status
// did before the counts were kept as bindings change.
func walkOccupancy(a *allocator, now int64) (active, declined int, pools []int) {
	pools = make([]int, len(a.pools))
	for addr, b := range a.byAddr {
		if !b.live(now) {
			continue
		}
		if b.state == bindDeclined {
			declined++
			continue
		}
		active++
		for i, p := range a.pools {
			if p.contains(addr) {
				pools[i]++
			}
		}
	}
	return active, declined, pools
}

// TestOccupancyMatchesWalk drives the handler with the replay's seeded
// stream of requests, with batches of records settled or rolled back in
// order as the writer does, deletions, sweeps, reconfigurations that move
// and overlap the pools, and a clock that jumps: after every step the
// counts kept as bindings change are what a walk of every binding finds,
// now and at times ahead (leases running out before a sweep).
func TestOccupancyMatchesWalk(t *testing.T) {
	configs := []*Config{
		testConfig(),
		testConfig(func(c *Config) { c.Pools[0].Range = span("192.0.2.100", "192.0.2.120") }),
		testConfig(func(c *Config) {
			c.Pools = append(c.Pools, c.Pools[0]) // overlapping pool 0
			c.Pools[len(c.Pools)-1].Range = span("192.0.2.105", "192.0.2.200")
		}),
	}
	for seed := range uint64(4) {
		rnd := rand.New(rand.NewPCG(seed, 9))
		hs := newHarness(t, configs[0])
		a := hs.h.alloc
		g := &replayGen{rnd: rnd, offered: map[int]netip.Addr{}, bound: map[int]netip.Addr{}}
		var queued [][]*binding // batches not settled yet, oldest first
		check := func(step int, what string) {
			t.Helper()
			for _, ahead := range []int64{0, 1, 60, 3600, int64(rnd.IntN(20000))} {
				now := hs.now.Unix() + ahead
				ga, gd, gp := a.occ.live(now)
				wa, wd, wp := walkOccupancy(a, now)
				if ga != wa || gd != wd || !reflect.DeepEqual(gp, wp) {
					t.Fatalf("seed %d step %d (%s), %d s ahead: counted active %d declined %d pools %v; walked %d %d %v",
						seed, step, what, ahead, ga, gd, gp, wa, wd, wp)
				}
			}
		}
		for i := range 4000 {
			hs.now = hs.now.Add(time.Duration(rnd.IntN(120)) * time.Second)
			if rnd.IntN(60) == 0 {
				hs.now = hs.now.Add(time.Duration(rnd.IntN(3)) * time.Hour)
			}
			what := "request"
			switch r := rnd.IntN(100); {
			case r < 3:
				what = "sweep"
				a.sweep(hs.now.Unix(), hs.now.UnixNano())
			case r < 5:
				what = "configure"
				hs.configure(configs[rnd.IntN(len(configs))])
			case r < 7:
				what = "delete"
				if list := a.bindings(); len(list) > 0 {
					queued = append(queued, []*binding{a.remove(list[rnd.IntN(len(list))].addr)})
				}
			case r < 30 && len(queued) > 0:
				what = "settle"
				n := 1 + rnd.IntN(len(queued))
				for _, batch := range queued[:n] {
					if rnd.IntN(3) == 0 {
						a.rollback(batch, hs.now.Unix())
					} else {
						a.settled(batch)
					}
				}
				queued = queued[n:]
			default:
				who, b := g.packet()
				o := hs.h.handleBytes(hs.now, b, netip.MustParseAddrPort("192.0.2.77:68"))
				g.learn(who, o)
				if len(o.commit) > 0 {
					queued = append(queued, o.commit)
				}
				if o.probe {
					hs.h.probed(hs.now, o.yiaddr, nil)
				}
			}
			check(i, what)
		}
	}
}
