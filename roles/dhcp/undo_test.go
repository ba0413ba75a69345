package dhcp

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestRollbackKeepsMemoryEqualToDisk drives the handler with random
// requests whose records are written in batches, two at a time in flight as
// with group commit, some of which fail: after every batch settles, the
// live leases in memory are exactly those the written records hold.
func TestRollbackKeepsMemoryEqualToDisk(t *testing.T) {
	R, rel, dec := dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline
	for seed := range 30 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		hs := newHarness(t, testConfig(func(c *Config) { c.Pools[0].Range = span("192.0.2.100", "192.0.2.105") }))
		a := hs.h.alloc
		disk := map[uint32]*binding{}
		write := func(batch []*binding) {
			if rng.IntN(3) == 0 {
				a.rollback(batch, hs.now.Unix())
				return
			}
			for _, r := range batch {
				c := *r
				if r.state == bindDeleted {
					delete(disk, r.addr)
				} else {
					disk[r.addr] = &c
				}
			}
			a.settled(batch)
		}
		var open []*binding
		var inFlight [][]*binding
		for step := range 300 {
			mac := fmt.Sprintf("02:00:00:00:00:%02x", 0x10+rng.IntN(6))
			addr := fmt.Sprintf("192.0.2.%d", 100+rng.IntN(6))
			var out outcome
			switch rng.IntN(10) {
			case 0:
				out = hs.send(msg(rel, mac, ci(addr), sid(srv))()).outcome
			case 1:
				out = hs.send(msg(dec, mac, wantIP(addr), sid(srv))()).outcome
			case 2:
				out = outcome{commit: []*binding{a.remove(addrU32(mustAddr(addr)))}}
			case 3:
				out = hs.send(msg(R, mac, wantIP(addr), host(fmt.Sprintf("h%d", rng.IntN(3))))()).outcome
			default:
				out = hs.send(msg(R, mac, wantIP(addr))()).outcome
			}
			open = append(open, out.commit...)
			if rng.IntN(3) == 0 {
				inFlight, open = append(inFlight, open), nil
			}
			if len(inFlight) > 1 || len(inFlight) == 1 && rng.IntN(2) == 0 {
				write(inFlight[0])
				inFlight = inFlight[1:]
			}
			if len(open) == 0 && len(inFlight) == 0 {
				checkMemoryIsDisk(t, fmt.Sprintf("seed %d step %d", seed, step), a, disk, hs.now.Unix())
			}
			checkDurableIsDisk(t, fmt.Sprintf("seed %d step %d", seed, step), a, disk)
			hs.now = hs.now.Add(time.Duration(rng.IntN(20)) * time.Minute)
		}
		for _, b := range append(inFlight, open) {
			write(b)
		}
		checkMemoryIsDisk(t, fmt.Sprintf("seed %d end", seed), a, disk, hs.now.Unix())
	}
}

// checkMemoryIsDisk compares the live leases and checks the indexes.
func checkMemoryIsDisk(t *testing.T, when string, a *allocator, disk map[uint32]*binding, now int64) {
	t.Helper()
	var mem, want []Lease
	for _, b := range a.bindings() {
		if b.live(now) {
			mem = append(mem, b.lease(now))
		}
	}
	for _, b := range disk {
		if b.live(now) {
			want = append(want, b.lease(now))
		}
	}
	slices.SortFunc(want, func(x, y Lease) int { return x.Address.Compare(y.Address) })
	if !reflect.DeepEqual(mem, want) {
		t.Fatalf("%s: memory holds\n%+v\nthe disk\n%+v", when, mem, want)
	}
	for k, b := range a.byClient {
		if a.byAddr[b.addr] != b || b.key() != k {
			t.Fatalf("%s: client %x points at %+v, which is not in memory", when, k, b)
		}
	}
	for name, b := range a.byName {
		if a.byAddr[b.addr] == b && b.failed() {
			t.Fatalf("%s: name %s held by a failed binding", when, name)
		}
	}
}

// checkDurableIsDisk: what a compaction would write now is what the
// written records hold, whatever is still in flight.
func checkDurableIsDisk(t *testing.T, when string, a *allocator, disk map[uint32]*binding) {
	t.Helper()
	var got, want []string
	for _, b := range a.durable() {
		got = append(got, string(encodeRecord(nil, b)))
	}
	for _, b := range disk {
		want = append(want, string(encodeRecord(nil, b)))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: a compaction would write\n%q\nthe disk holds\n%q", when, got, want)
	}
}

// TestDeleteRolledBack: a deletion whose record fails puts the lease back,
// its client and its name included.
func TestDeleteRolledBack(t *testing.T) {
	hs := newHarness(t, testConfig())
	out := hs.send(msg(dhcpv4.MessageTypeRequest, macA, wantIP("192.0.2.100"), host("pc"))())
	hs.h.alloc.settled(out.commit)
	a := hs.h.alloc
	b := a.byAddr[addrU32(mustAddr("192.0.2.100"))]
	d := a.remove(b.addr)
	if a.byAddr[b.addr] != nil || a.nameHolder("pc", hs.now.Unix()) != nil {
		t.Fatal("remove left the binding")
	}
	a.rollback([]*binding{d}, hs.now.Unix())
	if a.byAddr[b.addr] != b || a.byClient[b.key()] != b || a.nameHolder("pc", hs.now.Unix()) != b || len(a.tombs) != 0 {
		t.Errorf("after the rollback: %+v, client %+v, name %+v", a.byAddr[b.addr], a.byClient[b.key()], a.nameHolder("pc", hs.now.Unix()))
	}
}
