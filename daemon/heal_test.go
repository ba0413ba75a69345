package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestDriftUndoneOnTheWire: a box with a WAN port, a lan client and a guest
// host. Someone flushes the whole ruleset, deletes gatewayd's table, turns
// forwarding off, deletes the WAN address and turns accept_ra on behind the
// daemon's back. Each is put back, and real packets show the policy before
// and after: what is forbidden (to a port of the box nobody may reach, from
// guest to the internet, from the ISP to the lan) is dropped again, and
// what is allowed passes again.
func TestDriftUndoneOnTheWire(t *testing.T) {
	s := newWANSite(t)
	s.write(staticUpstream, "")
	s.g.start()
	s.ispRoutesInside(t, wanStatic)
	serveTCP(t, s.g.ns, "0.0.0.0:8080")
	serveTCP(t, s.isp, internet+":80")
	serveTCP(t, s.client, "0.0.0.0:8080")
	leased := s.lease(t)
	policy := []check{
		{"client → the internet", tcpTo(s.client, internet+":80"), true},
		{"client → ping the router alias", pingTo(s.client, "192.0.2.1"), true},
		{"guest → ping the guest alias", pingTo(s.guest, "198.18.7.1"), true},
		{"client → tcp/8080 on the router alias", tcpTo(s.client, "192.0.2.1:8080"), false},
		{"guest → tcp/8080 on the guest alias", tcpTo(s.guest, "198.18.7.1:8080"), false},
		{"guest → the internet (guest forwards nowhere)", tcpTo(s.guest, internet+":80"), false},
		{"guest → the lan client", tcpTo(s.guest, leased+":8080"), false},
		{"isp → the lan client", tcpTo(s.isp, leased+":8080"), false},
		{"isp → tcp/8080 on the WAN address", tcpTo(s.isp, wanStatic+":8080"), false},
	}
	sysctl := func(key string) string {
		return strings.TrimSpace(s.g.ns.MustRun(t, "cat", "/proc/sys/"+strings.ReplaceAll(key, ".", "/")))
	}
	expect(t, policy...)
	for _, tc := range []struct {
		what   string
		argv   []string
		within time.Duration
		back   func() error
	}{
		{"nft flush ruleset", []string{"nft", "flush", "ruleset"}, 1500 * time.Millisecond, s.g.hasTable},
		{"nft delete table inet gatewayd", []string{"nft", "delete", "table", "inet", "gatewayd"}, 1500 * time.Millisecond, s.g.hasTable},
		{"ip_forward=0", []string{"sysctl", "-qw", "net.ipv4.ip_forward=0"}, 2 * time.Second, func() error {
			if v := sysctl("net.ipv4.ip_forward"); v != "1" {
				return fmt.Errorf("ip_forward is %s", v)
			}
			return nil
		}},
		{"the WAN address deleted", []string{"ip", "addr", "del", wanStatic + "/24", "dev", "eth0"}, 2 * time.Second, func() error {
			if out := s.g.ns.MustRun(t, "ip", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(out, "inet "+wanStatic+"/24") {
				return fmt.Errorf("the WAN address is not back: %q", out)
			}
			// The kernel took the default route with the address.
			if out := s.g.ns.MustRun(t, "ip", "-4", "route", "show", "default"); !strings.Contains(out, "via "+ispRouter+" dev eth0") {
				return fmt.Errorf("no default route out of the WAN port: %q", out)
			}
			return nil
		}},
		{"accept_ra=1 on the alias NIC", []string{"sysctl", "-qw", "net.ipv6.conf.eth1.accept_ra=1"}, 2 * time.Second, func() error {
			if v := sysctl("net.ipv6.conf.eth1.accept_ra"); v != "0" {
				return fmt.Errorf("accept_ra on eth1 is %s", v)
			}
			return nil
		}},
	} {
		s.g.ns.MustRun(t, tc.argv...)
		lab.Eventually(t, tc.within, tc.back)
		t.Run("after "+tc.what, func(t *testing.T) { expect(t, policy...) })
	}
	st := s.g.status()
	if st.Repairs["firewall"].Restores < 2 || st.Repairs["routes and sysctls"].Restores < 3 || st.Degraded != "" {
		t.Errorf("status after the repairs: %+v, degraded %q; want at least 2 restores of the firewall and 3 of routes and sysctls", st.Repairs, st.Degraded)
	}
}

// hasTable reports whether table inet gatewayd is in the kernel with its
// input chain.
func (g *gateway) hasTable() error {
	out, err := g.ns.Run(g.t.Context(), "nft", "list", "chain", "inet", "gatewayd", "input")
	if err != nil || !strings.Contains(out, "policy drop") {
		return fmt.Errorf("no gatewayd input chain: %v", err)
	}
	return nil
}
