package aliases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"net/netip"

	"gatewayd/lab"
)

func TestOpenMissingInterface(t *testing.T) {
	r := newRig(t)
	n, err := r.tryOpen(t, Options{Interface: "eth9", StateDir: r.dir})
	if err != nil {
		t.Fatalf("Open(eth9), which does not exist: %v; want it to open and wait", err)
	}
	want := "interface eth9 does not exist; set [gateway] interface to one of: eth1"
	if st := n.Link(); st.Present || st.Waiting != want || st.Err != nil {
		t.Fatalf("Link() = %+v, want absent, waiting %q", st, want)
	}
}

func TestOpenSetsPromoteSecondaries(t *testing.T) {
	r := newRig(t)
	r.open(t)
	if got := strings.TrimSpace(r.gw.MustRun(t, "cat", "/proc/sys/net/ipv4/conf/eth1/promote_secondaries")); got != "1" {
		t.Fatalf("promote_secondaries on eth1 = %q, want 1", got)
	}
}

func TestOpenActsInTheCallersNamespace(t *testing.T) {
	r := newRig(t)
	if err := r.gw.Sysctl("net/ipv4/conf/eth1/promote_secondaries", "0"); err != nil {
		t.Fatal(err)
	}
	// Called from the test's own namespace, which has no eth1: Open must
	// find no eth1 there (and wait for one), and must not reach into the
	// lab to write any sysctl or address.
	n, err := Open(Options{Interface: "eth1", StateDir: r.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if st := n.Link(); st.Present || !strings.Contains(st.Waiting, "interface eth1 does not exist") {
		t.Fatalf("Link() = %+v: found eth1 outside the namespace it lives in", st)
	}
	if res := set(t, n, router); res.Changed() || len(res.Pending) != 1 {
		t.Fatalf("Set outside the lab: %+v, want the one add pending", res)
	}
	if got := strings.TrimSpace(r.gw.MustRun(t, "cat", "/proc/sys/net/ipv4/conf/eth1/promote_secondaries")); got != "0" {
		t.Fatalf("promote_secondaries on the lab's eth1 = %q after an Open elsewhere, want 0", got)
	}
	r.wantAddrs(t, map[string]string{primary: "eth1"})
}

func TestSetAddsWithLabelsAndIsIdempotent(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	res := set(t, n, router, dhcp, dns)
	if len(res.Done) != 3 || len(res.Conflicts) != 0 {
		t.Fatalf("first Set: %+v", res)
	}
	r.wantAddrs(t, map[string]string{primary: "eth1",
		"192.168.1.1/24": "eth1:0", "192.168.1.2/24": "eth1:1", "192.168.1.3/24": "eth1:2"})
	if got := n.Writes(); got != 3 {
		t.Errorf("writes after adding 3 aliases = %d, want 3", got)
	}

	// Watch re-lists as soon as it has subscribed: that repair must find
	// nothing to do. Wait for it, not for some time: a sleep passes when
	// Watch has not run at all.
	before := n.Writes()
	r.watch(t, n)
	lab.Eventually(t, 5*time.Second, func() error {
		if n.repairs.Load() < 1 {
			return errors.New("Watch has not finished a repair yet")
		}
		return nil
	})
	if n.Writes() != before {
		t.Fatalf("Watch made %d netlink writes with nothing to repair", n.Writes()-before)
	}
	res = set(t, n, router, dhcp, dns)
	if res.Changed() || n.Writes() != before {
		t.Fatalf("second Set with the same aliases: %d netlink writes, result %+v; want none", n.Writes()-before, res)
	}
	if steps, err := n.Plan([]Alias{router, dhcp, dns}); err != nil || len(steps) != 0 {
		t.Fatalf("Plan of the applied set = %v, %v; want nothing", steps, err)
	}

	for _, st := range n.Status() {
		if !st.Present || !st.Owned || st.Label != st.Alias.Label || st.Conflict != "" || st.Err != nil {
			t.Errorf("status of %s: %+v", st.Alias, st)
		}
	}

	// Stopped before it starts: nothing done, nothing recorded.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err := n.Set(cctx, []Alias{router, dhcp, dns, labnet}); err == nil || res.Changed() {
		t.Errorf("Set with a cancelled context: %+v, %v; want an error and nothing done", res, err)
	}
	if _, owned := n.owned(labnet.Prefix); owned {
		t.Error("an alias never added is recorded as owned")
	}
}

func TestOwnershipSurvivesRestartAndPurge(t *testing.T) {
	r := newRig(t)
	r.gw.MustRun(t, "ip", "addr", "add", "192.168.1.77/24", "dev", "eth1", "label", "eth1:hand")
	others := map[string]string{primary: "eth1", "192.168.1.77/24": "eth1:hand"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range others {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	n := r.open(t)
	set(t, n, router, dhcp, dns, labnet)
	n.Close()

	// A restart with an edited config: dhcp and lab are gone from it.
	n = r.open(t)
	steps, err := n.Plan([]Alias{router, dns})
	if err != nil {
		t.Fatal(err)
	}
	// 192.168.1.2 is a secondary (the primary address is first in its
	// subnet), 10.0.0.1 the first of its own: secondaries go first.
	if len(steps) != 2 || steps[0].String() != "ip addr del 192.168.1.2/24 dev eth1" || steps[0].Alias.Name != "dhcp" ||
		steps[1].String() != "ip addr del 10.0.0.1/24 dev eth1" {
		t.Fatalf("plan after restart: %q", steps)
	}
	res := set(t, n, router, dns)
	if len(res.Done) != 2 {
		t.Fatalf("Set after restart did %q, want the 2 deletes", res.Done)
	}
	r.wantAddrs(t, with(map[string]string{"192.168.1.1/24": "eth1:0", "192.168.1.3/24": "eth1:2"}))

	// Relabelling: delete and add.
	relabelled := router
	relabelled.Label = "eth1:9"
	res = set(t, n, relabelled, dns)
	if len(res.Done) != 1 || res.Done[0].Op != OpRelabel {
		t.Fatalf("relabel Set did %q", res.Done)
	}
	r.wantAddrs(t, with(map[string]string{"192.168.1.1/24": "eth1:9", "192.168.1.3/24": "eth1:2"}))

	// The hand-added address wanted as an alias: reported, never taken.
	hand := Alias{Name: "printer", Prefix: pfx("192.168.1.77/24"), Label: "eth1:4"}
	res = set(t, n, relabelled, dns, hand)
	if len(res.Conflicts) != 1 || res.Conflicts[0].Alias.Name != "printer" || res.Changed() {
		t.Fatalf("Set with a hand-added address: %+v", res)
	}
	for _, st := range n.Status() {
		if st.Alias.Name == "printer" && (st.Owned || st.Conflict == "" || !st.Present) {
			t.Errorf("status of the hand-added address: %+v", st)
		}
	}

	// Another restart, then purge: only gatewayd's addresses go, and Purge
	// names exactly those.
	n.Close()
	n = r.open(t)
	removed, err := n.Purge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(removed); got != "[router (192.168.1.1/24) dns (192.168.1.3/24)]" {
		t.Errorf("Purge removed %s, want dns and router", got)
	}
	r.wantAddrs(t, others)
	b, err := os.ReadFile(filepath.Join(r.dir, recordFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec recordJSON
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.Addresses) != 0 {
		t.Fatalf("record after purge: %s (%v)", b, err)
	}
}

func TestRemovingThePrimaryOfASubnetKeepsTheOthers(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	lab2 := Alias{Name: "lab2", Prefix: pfx("10.0.0.2/24"), Label: "eth1:4"}
	set(t, n, labnet, lab2) // 10.0.0.1 is the primary of 10.0.0.0/24
	set(t, n, lab2)
	r.wantAddrs(t, map[string]string{primary: "eth1", "10.0.0.2/24": "eth1:4"})
}

func TestWatchPutsBackAndSurvivesLinkChanges(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	set(t, n, router, dhcp, dns)
	r.watch(t, n)
	all := map[string]string{primary: "eth1",
		"192.168.1.1/24": "eth1:0", "192.168.1.2/24": "eth1:1", "192.168.1.3/24": "eth1:2"}

	before := n.Writes()
	r.gw.MustRun(t, "ip", "addr", "del", "192.168.1.2/24", "dev", "eth1")
	lab.Eventually(t, 5*time.Second, func() error { return r.checkAddrs(t, all) })
	if got := n.Writes() - before; got != 1 {
		t.Errorf("putting one alias back took %d netlink writes, want 1", got)
	}

	// Down and up: IPv4 addresses stay, and on up every alias is announced
	// again, so a neighbour that learnt another MAC meanwhile learns ours.
	r.gw.MustRun(t, "ip", "link", "set", "eth1", "down")
	r.nb.MustRun(t, "ip", "neigh", "replace", "192.168.1.3", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")
	r.gw.MustRun(t, "ip", "link", "set", "eth1", "up")
	lab.Eventually(t, 5*time.Second, func() error { return r.checkAddrs(t, all) })
	lab.Eventually(t, 5*time.Second, func() error { return r.neighbourSees(t, "192.168.1.3", r.gwMAC.String()) })

	// The NIC vanishes and comes back (a new ifindex, its addresses gone):
	// the aliases come back; the primary is not gatewayd's to restore.
	r.gw.MustRun(t, "ip", "link", "del", "eth1")
	newMAC, err := r.l.Plug(r.sw, r.gw, "eth1")
	if err != nil {
		t.Fatal(err)
	}
	delete(all, primary)
	lab.Eventually(t, 5*time.Second, func() error { return r.checkAddrs(t, all) })
	// The NIC's one packet socket follows it to its new index and MAC.
	lab.Eventually(t, 5*time.Second, func() error { return r.neighbourSees(t, "192.168.1.3", newMAC.String()) })
	if got := strings.TrimSpace(r.gw.MustRun(t, "cat", "/proc/sys/net/ipv4/conf/eth1/promote_secondaries")); got != "1" {
		t.Errorf("promote_secondaries on the new eth1 = %q, want 1", got)
	}
}

func TestWatchRateLimits(t *testing.T) {
	w := &watcher{n: &NIC{log: lab.Logger(t)}, limit: map[netip.Prefix][]time.Time{}}
	now := time.Now()
	p := pfx("192.168.1.1/24")
	for i := range repairBurst {
		if ok, _ := w.allow(p, now.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("put-back %d refused", i+1)
		}
	}
	ok, retry := w.allow(p, now.Add(10*time.Second))
	if ok || retry != repairWindow-10*time.Second {
		t.Fatalf("put-back %d: allowed=%v retry=%v; want refused, retry in %v", repairBurst+1, ok, retry, repairWindow-10*time.Second)
	}
	if ok, _ := w.allow(pfx("192.168.1.2/24"), now); !ok {
		t.Fatal("another address was limited too")
	}
	if ok, _ := w.allow(p, now.Add(repairWindow)); !ok {
		t.Fatal("still refused after the window")
	}
}

// neighbourSees checks the neighbour's ARP entry for ip.
func (r *rig) neighbourSees(t *testing.T, ip, mac string) error {
	out := r.nb.MustRun(t, "ip", "neigh", "show", ip, "dev", "eth0")
	if !strings.Contains(out, "lladdr "+mac) {
		return fmt.Errorf("neighbour's entry for %s: %q, want lladdr %s", ip, strings.TrimSpace(out), mac)
	}
	return nil
}

func TestSetAnnouncesToNeighbours(t *testing.T) {
	r := newRig(t)
	// One frame only: the one Set sends before it returns.
	n, err := r.tryOpen(t, Options{Interface: "eth1", StateDir: r.dir, Announce: Announce{Count: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// The neighbour still believes the address lives at another MAC (the
	// box it moved from). Without a gratuitous ARP it would keep sending
	// there until the entry expires.
	r.nb.MustRun(t, "ip", "neigh", "replace", "192.168.1.3", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")
	set(t, n, dns)
	lab.Eventually(t, 2*time.Second, func() error { return r.neighbourSees(t, "192.168.1.3", r.gwMAC.String()) })

	if err := n.Announce(netip.MustParseAddr("192.168.1.99")); err == nil {
		t.Error("Announce of an address the NIC does not hold succeeded")
	}
}

func TestProbe(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	set(t, n, dns)
	ctx := context.Background()

	holder, err := n.Probe(ctx, netip.MustParseAddr("192.168.1.50"), 2*time.Second)
	if err != nil || holder.String() != r.nbMAC.String() {
		t.Fatalf("Probe(neighbour's address) = %v, %v; want %v", holder, err, r.nbMAC)
	}
	holder, err = n.Probe(ctx, netip.MustParseAddr("192.168.1.99"), 300*time.Millisecond)
	if err != nil || holder != nil {
		t.Fatalf("Probe(free address) = %v, %v; want nobody", holder, err)
	}
	// Holding it ourselves does not count.
	holder, err = n.Probe(ctx, dns.Prefix.Addr(), 300*time.Millisecond)
	if err != nil || holder != nil {
		t.Fatalf("Probe(our own alias) = %v, %v; want nobody", holder, err)
	}
	// A probe must teach the neighbour nothing (sender IP 0.0.0.0): a
	// request with a real sender IP would have left an entry for it.
	if out := r.nb.MustRun(t, "ip", "neigh", "show", "dev", "eth0"); strings.Contains(out, r.gwMAC.String()) {
		t.Errorf("neighbour learnt %q from probes", out)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := n.Probe(cctx, netip.MustParseAddr("192.168.1.99"), time.Minute); err == nil {
		t.Error("Probe with a cancelled context succeeded")
	}
}

func TestCloseStopsWatch(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	set(t, n, router)
	done := make(chan error, 1)
	go func() { done <- r.gw.Do(func() error { return n.Watch(context.Background()) }) }()
	lab.Eventually(t, 5*time.Second, func() error { // Close must stop a Watch that runs
		if n.subs.Load() < 1 {
			return errors.New("not subscribed yet")
		}
		return nil
	})
	n.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch still running 10 s after Close")
	}
	if _, err := n.Set(context.Background(), []Alias{router}); err == nil {
		t.Error("Set on a closed NIC succeeded")
	}
	r.wantAddrs(t, map[string]string{primary: "eth1", "192.168.1.1/24": "eth1:0"}) // Close leaves addresses alone
}

// TestWatchResubscribes overflows Watch's netlink socket (the kernel then
// reports ENOBUFS and the library closes the channel) and checks that Watch
// subscribes again and keeps putting aliases back.
func TestWatchResubscribes(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	set(t, n, router, dhcp)
	r.watch(t, n)
	lab.Eventually(t, 5*time.Second, func() error {
		if n.subs.Load() < 1 {
			return fmt.Errorf("not subscribed yet")
		}
		return nil
	})

	// Hold the NIC so Watch stalls in its repair while thousands of address
	// events pile up behind it.
	var batch strings.Builder
	for i := range 6000 {
		fmt.Fprintf(&batch, "addr add 172.16.%d.%d/32 dev eth1\n", i/250, i%250+1)
	}
	path := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(path, []byte(batch.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	_, err := r.gw.Run(context.Background(), "ip", "-b", path)
	n.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 10*time.Second, func() error {
		if got := n.subs.Load(); got < 2 {
			return fmt.Errorf("%d subscriptions, want a second one after the overflow", got)
		}
		return nil
	})
	r.gw.MustRun(t, "ip", "addr", "flush", "dev", "eth1", "to", "172.16.0.0/16")

	r.gw.MustRun(t, "ip", "addr", "del", "192.168.1.2/24", "dev", "eth1")
	lab.Eventually(t, 5*time.Second, func() error {
		return r.checkAddrs(t, map[string]string{primary: "eth1", "192.168.1.1/24": "eth1:0", "192.168.1.2/24": "eth1:1"})
	})
}
