package aliases

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestNICAbsentAtStartIsWaitedFor opens and sets with no eth1 at all (a
// boot where the NIC's driver comes late), then plugs it in: Watch adds
// the aliases, makes the new NIC ready and announces them.
func TestNICAbsentAtStartIsWaitedFor(t *testing.T) {
	r := newRig(t)
	r.gw.MustRun(t, "ip", "link", "del", "eth1")
	n := r.open(t)
	res, err := n.Set(context.Background(), []Alias{router, dns})
	if err != nil {
		t.Fatalf("Set with the NIC absent: %v", err)
	}
	if res.Changed() || len(res.Pending) != 2 || !strings.Contains(res.Waiting, "interface eth1 does not exist") {
		t.Fatalf("Set with the NIC absent: %+v; want both adds pending, and why", res)
	}
	for _, st := range n.Status() {
		if st.Present || st.Err != nil || !strings.Contains(st.Waiting, "does not exist") {
			t.Errorf("status of %s: %+v", st.Alias, st)
		}
	}
	if steps, err := n.Plan([]Alias{router, dns}); err != nil || len(steps) != 2 || steps[0].Op != OpAdd {
		t.Errorf("Plan with the NIC absent: %v, %v", steps, err)
	}
	if owned, err := n.Owned(); err != nil || owned != nil {
		t.Errorf("Owned with the NIC absent: %v, %v", owned, err)
	}
	if _, err := n.Probe(context.Background(), dns.Prefix.Addr(), time.Second); !errors.Is(err, ErrNoLink) {
		t.Errorf("Probe with the NIC absent: %v, want ErrNoLink", err)
	}
	if _, err := n.Adopt([]Alias{router}); !errors.Is(err, ErrNoLink) {
		t.Errorf("Adopt with the NIC absent: %v, want ErrNoLink", err)
	}
	if removed, err := n.Purge(context.Background()); err != nil || removed != nil {
		t.Errorf("Purge with the NIC absent: %v, %v", removed, err)
	}
	set(t, n, router, dns) // Purge forgot the desired set

	r.watch(t, n)
	r.nb.MustRun(t, "ip", "neigh", "replace", "192.168.1.3", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")
	mac, err := r.l.Plug(r.sw, r.gw, "eth1")
	if err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, func() error {
		return r.checkAddrs(t, map[string]string{"192.168.1.1/24": "eth1:0", "192.168.1.3/24": "eth1:2"})
	})
	// The packet socket opened before the NIC existed is bound to it now.
	lab.Eventually(t, 5*time.Second, func() error { return r.neighbourSees(t, "192.168.1.3", mac.String()) })
	if got := strings.TrimSpace(r.gw.MustRun(t, "cat", "/proc/sys/net/ipv4/conf/eth1/promote_secondaries")); got != "1" {
		t.Errorf("promote_secondaries on the new eth1 = %q, want 1", got)
	}
	if st := n.Link(); !st.Present || !st.Up || st.Waiting != "" {
		t.Errorf("Link() once eth1 is there: %+v", st)
	}
}

// TestNICDownAtStart starts on a NIC that is administratively down: the
// aliases go on it (the kernel allows that), nothing fails, and they are
// announced when it comes up.
func TestNICDownAtStart(t *testing.T) {
	r := newRig(t)
	r.gw.MustRun(t, "ip", "link", "set", "eth1", "down")
	n := r.open(t)
	r.nb.MustRun(t, "ip", "neigh", "replace", "192.168.1.3", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")
	res := set(t, n, dns)
	if len(res.Done) != 1 || !strings.Contains(res.Waiting, "down") {
		t.Fatalf("Set on a NIC that is down: %+v; want the add done and the announcement waiting", res)
	}
	r.wantAddrs(t, map[string]string{primary: "eth1", "192.168.1.3/24": "eth1:2"})
	if err := n.Announce(dns.Prefix.Addr()); err != nil {
		t.Errorf("Announce on a NIC that is down: %v, want nil (announced on up)", err)
	}
	if st := n.Link(); !st.Present || st.Up || !strings.Contains(st.Waiting, "down") {
		t.Errorf("Link() while down: %+v", st)
	}
	if _, err := n.Probe(context.Background(), dns.Prefix.Addr(), time.Second); !errors.Is(err, ErrNoLink) {
		t.Errorf("Probe on a NIC that is down: %v, want ErrNoLink", err)
	}

	r.watch(t, n)
	r.gw.MustRun(t, "ip", "link", "set", "eth1", "up")
	lab.Eventually(t, 5*time.Second, func() error { return r.neighbourSees(t, "192.168.1.3", r.gwMAC.String()) })
}
