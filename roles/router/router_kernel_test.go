package router

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// routerLab is a gateway on a wire with a client and an upstream host that
// also holds 203.0.113.10, outside every subnet.
type routerLab struct {
	l           *lab.Lab
	sw          *lab.Switch
	gw, lan, up *lab.Namespace
	state       string
}

func newRouterLab(t *testing.T) *routerLab {
	t.Helper()
	lab.Require(t)
	l := lab.New(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sw, err := l.Switch("wire")
	must(err)
	rl := &routerLab{l: l, sw: sw, state: t.TempDir()}
	for _, n := range []struct {
		ns   **lab.Namespace
		name string
	}{{&rl.gw, "gw"}, {&rl.lan, "lan"}, {&rl.up, "up"}} {
		ns, err := l.Namespace(n.name)
		must(err)
		*n.ns = ns
	}
	_, err = l.Plug(sw, rl.gw, "eth1")
	must(err)
	_, err = l.Plug(sw, rl.lan, "eth0")
	must(err)
	_, err = l.Plug(sw, rl.up, "eth0")
	must(err)
	must(rl.gw.Addr("eth1", "192.168.1.1/24"))
	must(rl.lan.Addr("eth0", "192.168.1.100/24"))
	must(rl.up.Addr("eth0", "192.168.1.254/24"))
	must(rl.up.Addr("lo", "203.0.113.10/32"))
	rl.lan.MustRun(t, "ip", "route", "add", "default", "via", "192.168.1.1")
	return rl
}

// open opens the role inside the gateway namespace.
func (rl *routerLab) open(t *testing.T) *Router {
	t.Helper()
	var r *Router
	err := rl.gw.Do(func() error {
		var err error
		r, err = Open(Options{StateDir: rl.state, Logger: lab.Logger(t)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// set calls Set from inside the namespace, as the daemon runs in it.
func (rl *routerLab) set(r *Router, c *Config) error {
	return rl.gw.Do(func() error { return r.Set(context.Background(), c) })
}

func (rl *routerLab) sysctl(t *testing.T, key string) string {
	t.Helper()
	return strings.TrimSpace(rl.gw.MustRun(t, "cat", "/proc/sys/"+key))
}

func (rl *routerLab) routes(t *testing.T) string {
	t.Helper()
	return rl.gw.MustRun(t, "ip", "-4", "route", "show", "table", "main")
}

func TestRouterRole(t *testing.T) {
	rl := newRouterLab(t)
	keys := []string{
		"net/ipv4/ip_forward", "net/ipv4/conf/all/send_redirects", "net/ipv4/conf/eth1/send_redirects",
		"net/ipv4/conf/all/accept_redirects", "net/ipv4/conf/eth1/accept_redirects", "net/ipv4/conf/eth1/rp_filter",
		"net/ipv6/conf/eth1/accept_ra",
	}
	before := map[string]string{}
	for _, k := range keys {
		before[k] = rl.sysctl(t, k)
	}
	// A route of someone else's that a gatewayd static route duplicates.
	rl.gw.MustRun(t, "ip", "route", "add", "172.16.0.0/12", "via", "192.168.1.250")
	r := rl.open(t)

	static := []string{"172.16.0.0/12 via 192.168.1.250 dev eth1", "198.18.0.0/15 via 192.168.1.250 dev eth1"}
	held := eth1("default via 192.168.1.254 dev eth1", static...)
	if got := strings.Join(rl.plan(t, r, held), "\n"); !strings.Contains(got, "sysctl -w net.ipv4.ip_forward=1") ||
		!strings.Contains(got, "ip route add default via 192.168.1.254 dev eth1") || strings.Contains(got, "172.16.0.0/12") {
		t.Errorf("plan:\n%s", got)
	}
	if err := rl.set(r, held); err != nil {
		t.Fatal(err)
	}
	t.Run("held", func(t *testing.T) {
		for k, v := range map[string]string{
			"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/send_redirects": "0", "net/ipv4/conf/eth1/send_redirects": "0",
			"net/ipv4/conf/all/accept_redirects": "0", "net/ipv4/conf/eth1/accept_redirects": "0", "net/ipv4/conf/eth1/rp_filter": "1",
			"net/ipv6/conf/eth1/accept_ra": "0",
		} {
			if got := rl.sysctl(t, k); got != v {
				t.Errorf("%s = %s, want %s", k, got, v)
			}
		}
		routes := rl.routes(t)
		for _, want := range []string{"default via 192.168.1.254 dev eth1 proto 177", "198.18.0.0/15 via 192.168.1.250 dev eth1 proto 177", foreign} {
			if !hasLine(routes, want) {
				t.Errorf("routes lack %q:\n%s", want, routes)
			}
		}
		st := r.Status()
		if !st.Held || !st.Forwarding || st.Upstream != "192.168.1.254" || len(st.Routes) != 2 {
			t.Errorf("status %+v", st)
		}
		// The client reaches the outside through the router.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rl.lan.Ping(ctx, netip.MustParseAddr("203.0.113.10")); err != nil {
			t.Errorf("client → outside through the router: %v", err)
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		n := r.Writes()
		if err := rl.set(r, eth1("default via 192.168.1.254 dev eth1", static...)); err != nil {
			t.Fatal(err)
		}
		if r.Writes() != n {
			t.Errorf("the same config wrote %d times", r.Writes()-n)
		}
		if p := rl.plan(t, r, held); len(p) != 0 {
			t.Errorf("plan for the applied config: %q", p)
		}
	})
	t.Run("upstream moves", func(t *testing.T) {
		moved := eth1("default via 192.168.1.253 dev eth1", static...)
		if p := strings.Join(rl.plan(t, r, moved), "\n"); p != "ip route replace default via 192.168.1.253 dev eth1" {
			t.Errorf("plan: %q", p)
		}
		if err := rl.set(r, moved); err != nil {
			t.Fatal(err)
		}
		routes := rl.routes(t)
		if !strings.Contains(routes, "default via 192.168.1.253 dev eth1 proto 177") || strings.Contains(routes, "192.168.1.254") {
			t.Errorf("routes:\n%s", routes)
		}
	})
	t.Run("conflict with someone else's route", func(t *testing.T) {
		bad := eth1("default via 192.168.1.254 dev eth1", "172.16.0.0/12 via 192.168.1.251 dev eth1")
		err := rl.set(r, bad)
		if err == nil || !strings.HasPrefix(err.Error(), "route 172.16.0.0/12 via 192.168.1.251 dev eth1: ") {
			t.Errorf("want an error starting with the route (the caller names the role), got %v", err)
		}
		if !hasLine(rl.routes(t), foreign) {
			t.Errorf("the foreign route was touched:\n%s", rl.routes(t))
		}
	})
	parent := t
	t.Run("restart keeps ownership", func(t *testing.T) {
		if err := rl.set(r, held); err != nil {
			t.Fatal(err)
		}
		_ = r.Close()
		r = rl.open(parent)
		if got := r.Status().Routes; len(got) != 2 {
			t.Errorf("after restart the role owns %q", got)
		}
	})
	t.Run("released", func(t *testing.T) {
		rl.gw.MustRun(t, "sh", "-c", "echo 2 > /proc/sys/net/ipv4/conf/eth1/rp_filter") // someone else's change
		// The router alias moved to another box.
		if err := rl.set(r, nil); err != nil {
			t.Fatal(err)
		}
		routes := rl.routes(t)
		if strings.Contains(routes, "proto 177") || !hasLine(routes, foreign) {
			t.Errorf("after release the routes are:\n%s", routes)
		}
		for _, k := range keys {
			want := before[k]
			if k == "net/ipv4/conf/eth1/rp_filter" {
				want = "2"
			}
			if got := rl.sysctl(t, k); got != want {
				t.Errorf("%s = %s after release, want %s", k, got, want)
			}
		}
		if st := r.Status(); st.Held || st.Forwarding || len(st.Routes) != 0 {
			t.Errorf("status %+v", st)
		}
	})
	t.Run("purge", func(t *testing.T) {
		if err := rl.set(r, held); err != nil {
			t.Fatal(err)
		}
		if err := rl.gw.Do(r.Purge); err != nil {
			t.Fatal(err)
		}
		if routes := rl.routes(t); strings.Contains(routes, "proto 177") {
			t.Errorf("purge left:\n%s", routes)
		}
		if got := rl.sysctl(t, "net/ipv4/ip_forward"); got != before["net/ipv4/ip_forward"] {
			t.Errorf("ip_forward = %s after purge", got)
		}
	})
}

// eth1 is the role's Config on eth1 with a default route and static ones.
func eth1(def string, static ...string) *Config {
	c := &Config{Interface: "eth1", Routes: []Route{rt(def)}}
	for _, s := range static {
		c.Routes = append(c.Routes, rt(s))
	}
	return c
}

// foreign is the route added by hand before gatewayd started.
const foreign = "172.16.0.0/12 via 192.168.1.250 dev eth1"

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

func (rl *routerLab) plan(t *testing.T, r *Router, c *Config) []string {
	t.Helper()
	var p []string
	if err := rl.gw.Do(func() error { p = r.Plan(c); return nil }); err != nil {
		t.Fatal(err)
	}
	return p
}
