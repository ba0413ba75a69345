package aliases

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestPlanDeletesSecondariesFirst(t *testing.T) {
	prim := func(prefix, label string) kernelAddr {
		k := ka(prefix, label)
		k.Primary = true
		return k
	}
	kernel := []kernelAddr{
		prim("10.0.0.1/24", "eth1:0"), ka("10.0.0.2/24", "eth1:1"), ka("10.0.0.3/24", "eth1:2"),
		prim("10.1.0.1/24", "eth1:3"), ka("10.1.0.2/24", "eth1:4"),
	}
	owned := func(p netip.Prefix) (Alias, bool) {
		for _, k := range kernel {
			if k.Prefix == p {
				return Alias{Prefix: p, Label: k.Label}, true
			}
		}
		return Alias{}, false
	}
	// Keep 10.0.0.3 only: of 10.0.0.0/24 the secondary 10.0.0.2 goes
	// before the first address, so the kernel promotes 10.0.0.3, which
	// stays; 10.1.0.0/24 goes whole, secondary first, promoting nothing.
	var got []string
	for _, s := range plan("eth1", []Alias{al("keep", "10.0.0.3/24", "eth1:2")}, kernel, owned) {
		got = append(got, s.String())
	}
	want := []string{
		"ip addr del 10.0.0.2/24 dev eth1",
		"ip addr del 10.1.0.2/24 dev eth1",
		"ip addr del 10.0.0.1/24 dev eth1",
		"ip addr del 10.1.0.1/24 dev eth1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan:\n got %q\nwant %q", got, want)
	}
}

// TestDeletesNeverCascadeOrPromoteNeedlessly removes about half of 2,400
// aliases in four subnets and reads what the kernel did, event by event:
// exactly one delete per removed alias, no kept alias deleted or added
// again, and one promotion, of a kept alias, in the one subnet that loses
// its first address but keeps others. Deleting in address order instead
// would promote, then delete, alias after alias (each promotion rewrites
// the routes of the whole subnet: 0.55 s a delete at 10,000 aliases).
func TestDeletesNeverCascadeOrPromoteNeedlessly(t *testing.T) {
	r := newRig(t)
	n, err := r.tryOpen(t, Options{Interface: "eth1", StateDir: r.dir, Announce: Announce{Count: -1}})
	if err != nil {
		t.Fatal(err)
	}
	const subnets, per = 4, 600
	var all, keep []Alias
	removed := map[netip.Addr]bool{}
	for s := range subnets {
		for i := range per {
			a := Alias{Name: fmt.Sprintf("a%d-%d", s, i), Label: fmt.Sprintf("eth1:%d", s*per+i),
				Prefix: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.%d/16", 101+s, i/250, 1+i%250))}
			all = append(all, a)
			// i == 0 is the first address of its subnet.
			gone := false
			switch s {
			case 0: // the first goes, and every other secondary: one promotion
				gone = i%2 == 0
			case 1: // all of it: no promotion
				gone = true
			case 2: // all kept
			case 3: // secondaries only: no promotion
				gone = i > 0 && i%3 == 0
			}
			if gone {
				removed[a.Prefix.Addr()] = true
			} else {
				keep = append(keep, a)
			}
		}
	}
	set(t, n, all...)

	events := r.addrEvents(t)
	before := n.Writes()
	res := set(t, n, keep...)
	if got := n.Writes() - before; got != uint64(len(removed)) {
		t.Errorf("removing %d aliases took %d netlink writes", len(removed), got)
	}
	for _, s := range res.Done {
		if s.Op != OpDel {
			t.Errorf("step %q while only removing", s)
		}
	}
	if len(res.Done) != len(removed) {
		t.Errorf("%d steps done, want %d deletes", len(res.Done), len(removed))
	}

	deleted := map[netip.Addr]int{}
	var promoted []netip.Addr
	for _, u := range events() {
		ip, _ := netip.AddrFromSlice(u.LinkAddress.IP.To4())
		switch {
		case !u.NewAddr:
			deleted[ip]++
		default: // the kernel announces a promoted address as new
			promoted = append(promoted, ip)
		}
	}
	for ip, times := range deleted {
		if !removed[ip] || times != 1 {
			t.Errorf("%s deleted %d times (removed: %v)", ip, times, removed[ip])
		}
	}
	if len(deleted) != len(removed) {
		t.Errorf("%d addresses deleted, want %d", len(deleted), len(removed))
	}
	if want := []netip.Addr{netip.MustParseAddr("10.101.0.2")}; !slices.Equal(promoted, want) {
		t.Errorf("promoted %v, want %v (the first kept secondary of 10.101.0.0/16, once)", promoted, want)
	}
	want := map[string]string{primary: "eth1"}
	for _, a := range keep {
		want[a.Prefix.String()] = a.Label
	}
	r.wantAddrs(t, want)
}

// addrEvents records the gateway's address events from now on; the
// function it returns stops and returns them, once every event up to a
// marker address it adds has arrived.
func (r *rig) addrEvents(t *testing.T) func() []netlink.AddrUpdate {
	t.Helper()
	ch := make(chan netlink.AddrUpdate, 4096)
	done := make(chan struct{})
	var stopped atomic.Bool
	err := r.gw.Do(func() error {
		return netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
			ReceiveBufferSize: 16 << 20, ReceiveBufferForceSize: true,
			ErrorCallback: func(err error) {
				if !stopped.Load() { // closing the socket ends the reader with an error
					t.Errorf("address events: %v", err)
				}
			},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []netlink.AddrUpdate
	stop := func() {
		if !stopped.Swap(true) {
			close(done)
		}
	}
	t.Cleanup(stop)
	return func() []netlink.AddrUpdate {
		const marker = "172.31.255.1"
		r.gw.MustRun(t, "ip", "addr", "add", marker+"/32", "dev", "eth1")
		defer r.gw.MustRun(t, "ip", "addr", "del", marker+"/32", "dev", "eth1")
		timeout := time.After(30 * time.Second)
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					t.Fatal("address events: the subscription closed (events lost)")
				}
				if u.LinkAddress.IP.Equal(net.ParseIP(marker)) {
					stop()
					return got
				}
				if strings.HasPrefix(u.LinkAddress.IP.String(), "10.") {
					got = append(got, u)
				}
			case <-timeout:
				t.Fatal("address events: the marker never came")
			}
		}
	}
}

// TestRemovingAPrimaryMakesSureOfPromoteSecondaries turns
// promote_secondaries off behind the NIC's back: removing the first address
// of a subnet must still keep the others.
func TestRemovingAPrimaryMakesSureOfPromoteSecondaries(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	lab2 := Alias{Name: "lab2", Prefix: pfx("10.0.0.2/24"), Label: "eth1:4"}
	set(t, n, labnet, lab2)
	if err := r.gw.Sysctl("net/ipv4/conf/eth1/promote_secondaries", "0"); err != nil {
		t.Fatal(err)
	}
	set(t, n, lab2)
	r.wantAddrs(t, map[string]string{primary: "eth1", "10.0.0.2/24": "eth1:4"})
	if got := strings.TrimSpace(r.gw.MustRun(t, "cat", "/proc/sys/net/ipv4/conf/eth1/promote_secondaries")); got != "1" {
		t.Errorf("promote_secondaries = %q, want 1", got)
	}
}
