package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
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

// panicOn is a log handler that panics on a record whose message starts
// with prefix while armed: a fault after the handler decided.
type panicOn struct {
	prefix string
	armed  *bool
}

func (p panicOn) Enabled(context.Context, slog.Level) bool { return true }
func (p panicOn) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p panicOn) WithGroup(string) slog.Handler            { return p }
func (p panicOn) Handle(_ context.Context, r slog.Record) error {
	if *p.armed && strings.HasPrefix(r.Message, p.prefix) {
		panic("injected: " + r.Message)
	}
	return nil
}

// allocState renders what the allocator holds: bindings, clients, names,
// tombstones, the pools' bitmaps and the occupancy.
func allocState(a *allocator) string {
	var lines []string
	for _, b := range a.bindings() {
		lines = append(lines, fmt.Sprintf("addr %q pending=%v", encodeRecord(nil, b), b.pending()))
	}
	for k, b := range a.byClient {
		lines = append(lines, fmt.Sprintf("client %x %s", k, u32Addr(b.addr)))
	}
	for n, b := range a.byName {
		lines = append(lines, fmt.Sprintf("name %s %s", n, u32Addr(b.addr)))
	}
	for addr := range a.tombs {
		lines = append(lines, fmt.Sprintf("tomb %s", u32Addr(addr)))
	}
	for _, p := range a.pools {
		lines = append(lines, fmt.Sprintf("pool %s used %x known %x", u32Addr(p.start), p.used, p.known))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + fmt.Sprintf("\nactive %d declined %d pools %v", a.occ.active, a.occ.declined, a.occ.pools)
}

// TestPanicAfterPutRollsBack: a request that panics after the allocator
// took its decision (while the reply is encoded or the decision logged)
// leaves the allocator as it was before the request: nothing of it is
// queued, so nothing of it may stay in memory.
func TestPanicAfterPutRollsBack(t *testing.T) {
	R, rel, dec := dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline
	for _, tc := range []struct {
		name, prefix string
		pkt          func() *dhcpv4.DHCPv4
	}{
		// The ACK drops an option that does not fit and logs it from encode.
		{"ack moving the client", "an option does not fit", msg(R, macA, wantIP("192.0.2.101"), host("pc"))},
		{"ack of a new client", "an option does not fit", msg(R, macB, wantIP("192.0.2.102"), host("pc"))},
		{"release", "DHCPRELEASE", msg(rel, macA, ci("192.0.2.100"), sid(srv))},
		{"decline", "DHCPDECLINE", msg(dec, macA, wantIP("192.0.2.100"), sid(srv))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, testConfig(plain, func(c *Config) {
				c.Pools[0].Options = []Option{big(224, 255, true), big(225, 255, true)}
			}))
			armed := false
			hs.h.log = slog.New(panicOn{prefix: tc.prefix, armed: &armed})
			a := hs.h.alloc
			out := hs.send(msg(R, macA, wantIP("192.0.2.100"), host("pc"))())
			if out.mt != ackType {
				t.Fatalf("setup: no ACK: %s", out.why)
			}
			a.settled(out.commit)
			before := allocState(a)
			clear(hs.h.dropLogged)
			armed = true
			out = hs.send(tc.pkt())
			armed = false
			if out.why != "panic" || hs.cnt.panics.Load() != 1 {
				t.Fatalf("no panic: %+v", out.outcome)
			}
			if after := allocState(a); after != before {
				t.Fatalf("before the request:\n%s\nafter it panicked:\n%s", before, after)
			}
			// The next request is served from that state.
			if out := hs.send(tc.pkt()); out.why == "panic" {
				t.Fatalf("the request panicked again: %+v", out.outcome)
			}
		})
	}
}
