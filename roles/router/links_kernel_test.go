package router

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLinksComeAndGo: whatever the kernel drops when a link goes down, loses
// its addresses or is re-created, the next Set with the same Config puts
// back; while it cannot, Set succeeds, says what waits, and writes nothing.
func TestLinksComeAndGo(t *testing.T) {
	rl, isp := newUplinkLab(t)
	r := rl.open(t)
	cfg := wanStatic("203.0.113.2/24")
	static := "198.18.0.0/15 via 192.168.1.250 dev eth1 proto 177"
	if err := rl.set(r, cfg); err != nil {
		t.Fatal(err)
	}
	// broken makes the fault, then checks that Set reports want as pending
	// (and writes nothing, however often it runs); fixed ends the fault, and
	// the next Set must repair with exactly repairs kernel writes (any
	// number when repairs is -1).
	check := func(t *testing.T, broken func(), want Pending, fixed func(), repairs int) {
		t.Helper()
		broken()
		n := r.Writes()
		if err := rl.set(r, cfg); err != nil {
			t.Fatalf("Set during the fault: %v", err)
		}
		ino := rl.recordInode(t)
		if err := rl.set(r, cfg); err != nil {
			t.Fatalf("Set during the fault: %v", err)
		}
		if rl.recordInode(t) != ino {
			t.Error("a second Set during the fault rewrote the record")
		}
		st := r.Status()
		if !hasPending(st.Pending, want.What, want.Reason) || st.Error != "" {
			t.Errorf("pending %+v, error %q; want %+v", st.Pending, st.Error, want)
		}
		if r.Writes() != n {
			t.Errorf("Set during the fault wrote %d times", r.Writes()-n)
		}
		fixed()
		n = r.Writes()
		if err := rl.set(r, cfg); err != nil {
			t.Fatal(err)
		}
		if got := int(r.Writes() - n); got != repairs && (repairs >= 0 || got == 0) {
			t.Errorf("the repair took %d writes, want %d", got, repairs)
		}
		routes := rl.routes(t)
		if !hasLine(routes, static) || !hasLine(routes, wanDefault) {
			t.Errorf("after the repair the routes are:\n%s", routes)
		}
		if st := r.Status(); len(st.Pending) != 0 || st.Error != "" {
			t.Errorf("after the repair: pending %+v, error %q", st.Pending, st.Error)
		}
	}
	t.Run("link down and up", func(t *testing.T) {
		check(t, func() { rl.gw.MustRun(t, "ip", "link", "set", "eth1", "down") },
			Pending{What: "ip route add " + strings.TrimSuffix(static, " proto 177"), Reason: "interface eth1 is down"},
			func() { rl.gw.MustRun(t, "ip", "link", "set", "eth1", "up") }, 1)
	})
	t.Run("addresses flushed", func(t *testing.T) {
		check(t, func() { rl.gw.MustRun(t, "ip", "addr", "flush", "dev", "eth1") },
			Pending{What: "ip route add " + strings.TrimSuffix(static, " proto 177"), Reason: "192.168.1.250 is on no subnet of eth1"},
			// As the aliases package does.
			func() { rl.gw.MustRun(t, "ip", "addr", "add", "192.168.1.1/24", "dev", "eth1") }, 1)
	})
	t.Run("route deleted by hand", func(t *testing.T) {
		rl.gw.MustRun(t, "ip", "route", "del", "default")
		n := r.Writes()
		if err := rl.set(r, cfg); err != nil {
			t.Fatal(err)
		}
		if !hasLine(rl.routes(t), wanDefault) || r.Writes() != n+1 {
			t.Errorf("after %d writes the routes are:\n%s", r.Writes()-n, rl.routes(t))
		}
	})
	t.Run("WAN NIC deleted and re-created", func(t *testing.T) {
		// The address, the route, promote_secondaries and accept_ra come
		// back on the new NIC.
		check(t, func() { rl.gw.MustRun(t, "ip", "link", "del", "eth0") },
			Pending{What: "ip addr add 203.0.113.2/24 dev eth0", Reason: "interface eth0 is absent"},
			func() { rl.linkISP(t, isp) }, 4)
		if got := rl.sysctl(t, "net/ipv6/conf/eth0/accept_ra"); got != "0" {
			t.Errorf("accept_ra on the new eth0 = %s", got)
		}
		if a := rl.addrs(t, "eth0"); !strings.Contains(a, "inet 203.0.113.2/24") {
			t.Errorf("eth0 addresses:\n%s", a)
		}
	})
	t.Run("alias NIC deleted and re-created", func(t *testing.T) {
		// The new NIC gets its sysctls and the static route again (how
		// many sysctls depends on the kernel's defaults for a new NIC).
		check(t, func() { rl.gw.MustRun(t, "ip", "link", "del", "eth1") },
			Pending{What: "sysctl -w net.ipv4.conf.eth1.rp_filter=1", Reason: "interface eth1 is absent"},
			func() {
				if _, err := rl.l.Plug(rl.sw, rl.gw, "eth1"); err != nil {
					t.Fatal(err)
				}
				if err := rl.gw.Addr("eth1", "192.168.1.1/24"); err != nil {
					t.Fatal(err)
				}
			}, -1)
		for k, want := range map[string]string{"net/ipv4/conf/eth1/rp_filter": "1", "net/ipv4/conf/eth1/send_redirects": "0", "net/ipv6/conf/eth1/accept_ra": "0"} {
			if got := rl.sysctl(t, k); got != want {
				t.Errorf("%s = %s on the new eth1, want %s", k, got, want)
			}
		}
	})
	t.Run("released", func(t *testing.T) {
		if err := rl.set(r, nil); err != nil {
			t.Fatal(err)
		}
		if routes := rl.routes(t); strings.Contains(routes, "proto 177") {
			t.Errorf("after release:\n%s", routes)
		}
		if a := rl.addrs(t, "eth0"); strings.Contains(a, "203.0.113.2/") {
			t.Errorf("after release eth0 has:\n%s", a)
		}
	})
}

// TestStartWithTheNICDown: the first Set with the NIC administratively down
// succeeds, says the default route waits, and the Set after the link comes
// up adds it.
func TestStartWithTheNICDown(t *testing.T) {
	rl := newRouterLab(t)
	rl.gw.MustRun(t, "ip", "link", "set", "eth1", "down")
	r := rl.open(t)
	held := eth1("default via 192.168.1.254 dev eth1")
	if p := strings.Join(rl.plan(t, r, held), "\n"); !strings.Contains(p, "# pending: ip route add default via 192.168.1.254 dev eth1 (interface eth1 is down)") {
		t.Errorf("plan:\n%s", p)
	}
	if err := rl.set(r, held); err != nil {
		t.Fatalf("Set with the NIC down: %v", err)
	}
	st := r.Status()
	if !st.Held || !st.Forwarding || st.Error != "" || !hasPending(st.Pending, "ip route add default via 192.168.1.254 dev eth1", "interface eth1 is down") {
		t.Errorf("status %+v", st)
	}
	rl.gw.MustRun(t, "ip", "link", "set", "eth1", "up")
	if err := rl.set(r, held); err != nil {
		t.Fatal(err)
	}
	if routes := rl.routes(t); !hasLine(routes, "default via 192.168.1.254 dev eth1 proto 177") {
		t.Errorf("routes after the link came up:\n%s", routes)
	}
	if st := r.Status(); len(st.Pending) != 0 || len(st.Routes) != 1 {
		t.Errorf("status %+v", st)
	}
}

// recordInode identifies the record file's current version: every save
// renames a new file into place.
func (rl *routerLab) recordInode(t *testing.T) uint64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(rl.state, recordFile))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
