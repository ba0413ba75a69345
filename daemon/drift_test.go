package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestDriftIsRepaired changes, behind the daemon's back, everything it owns
// besides addresses (those have their own test): the nftables table, the
// default route, a router sysctl, and the link itself; each is put back
// within the time the issue names, and status counts the repairs.
func TestDriftIsRepaired(t *testing.T) {
	g := newGateway(t)
	g.start()
	table := func() error {
		_, err := g.ns.Run(t.Context(), "nft", "list", "table", "inet", "gatewayd")
		return err
	}
	defaultRoute := func() error {
		out := g.ns.MustRun(t, "ip", "-4", "route", "show", "default")
		if !strings.Contains(out, "via 198.51.100.254") {
			return fmt.Errorf("no default route: %q", out)
		}
		return nil
	}
	forwarding := func() error {
		if v := strings.TrimSpace(g.ns.MustRun(t, "cat", "/proc/sys/net/ipv4/ip_forward")); v != "1" {
			return fmt.Errorf("ip_forward = %s", v)
		}
		return nil
	}
	for _, tc := range []struct {
		what   string
		break_ []string
		within time.Duration
		check  func() error
	}{
		// The repairs come within a second (events, or the tick); the
		// checks allow three, for a loaded CI machine.
		{"nft flush ruleset", []string{"nft", "flush", "ruleset"}, 3 * time.Second, table},
		{"nft delete table inet gatewayd", []string{"nft", "delete", "table", "inet", "gatewayd"}, 3 * time.Second, table},
		{"ip route del default", []string{"ip", "route", "del", "default"}, 3 * time.Second, defaultRoute},
		{"ip_forward flipped to 0", []string{"sysctl", "-qw", "net.ipv4.ip_forward=0"}, 3 * time.Second, forwarding},
	} {
		g.ns.MustRun(t, tc.break_...)
		lab.Eventually(t, tc.within, tc.check)
	}

	// The link goes down and up: the kernel drops the route via the
	// gateway; the daemon puts it back once the link is up.
	g.ns.MustRun(t, "ip", "link", "set", "eth1", "down")
	g.ns.MustRun(t, "ip", "link", "set", "eth1", "up")
	lab.Eventually(t, 3*time.Second, defaultRoute)

	st := g.status()
	if st.Repairs["firewall"].Restores < 2 || st.Repairs["routes and sysctls"].Restores < 2 || st.Degraded != "" {
		t.Errorf("status after the repairs: %+v, degraded %q", st.Repairs, st.Degraded)
	}
}
