package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestRestartWritesNothing: a restart (SIGTERM, then start) with an
// unchanged file makes no kernel change: `ip monitor` and `nft monitor`
// see nothing across stop and start, and no sysctl of the box differs
// after. Checked on the single-NIC site (upstream on the alias wire) and on
// a WAN port, static and by DHCP, with a client holding a lease.
func TestRestartWritesNothing(t *testing.T) {
	t.Run("single NIC", func(t *testing.T) {
		g := newGateway(t)
		g.start()
		restartQuietly(t, g)
	})
	for _, tc := range []struct{ name, upstream string }{{"WAN static", staticUpstream}, {"WAN dhcp", dhcpUpstream}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newWANSite(t)
			if tc.upstream == dhcpUpstream {
				s.dnsmasqDHCP(t)
			}
			s.write(tc.upstream, "")
			s.g.start()
			s.g.wanAddress(20 * time.Second)
			s.lease(t)
			restartQuietly(t, s.g)
			if _, st := s.g.wanAddress(10 * time.Second); st.Degraded != "" {
				t.Errorf("after the restart: degraded %q", st.Degraded)
			}
		})
	}
}

// restartQuietly restarts the daemon under noKernelWrites and compares the
// box's sysctls before and after.
func restartQuietly(t *testing.T, g *gateway) {
	t.Helper()
	settle(t, g)
	before := sysctls(t, g)
	g.noKernelWrites("a restart with an unchanged file", func() {
		g.stop()
		g.start()
	})
	if after := sysctls(t, g); after != before {
		t.Errorf("the restart changed sysctls:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out, err := g.cli("reload"); err != nil || strings.TrimSpace(out) != "no changes" {
		t.Errorf("reload after the restart: %q %v", out, err)
	}
}

// settle waits until the kernel's own changes after the lab was built are
// over, so the monitors see only the daemon's: link-local addresses leaving
// DAD, and the links' operational state (linkwatch reports carrier up to a
// second late).
func settle(t testing.TB, g *gateway) {
	t.Helper()
	lab.Eventually(t, 5*time.Second, func() error {
		if out := strings.TrimSpace(g.ns.MustRun(t, "ip", "-6", "-o", "addr", "show", "tentative")); out != "" {
			return fmt.Errorf("addresses still tentative: %s", out)
		}
		for _, line := range strings.Split(strings.TrimSpace(g.ns.MustRun(t, "ip", "-o", "link", "show")), "\n") {
			if !strings.Contains(line, "LOOPBACK") && !strings.Contains(line, "state UP") {
				return fmt.Errorf("a link is not up yet: %s", line)
			}
		}
		return nil
	})
}

// sysctls are the box's interface and forwarding sysctls, one per line.
func sysctls(t *testing.T, g *gateway) string {
	t.Helper()
	out := g.ns.MustRun(t, "sysctl", "-a", "-r", `^net\.ipv(4\.ip_forward|4\.conf\.|6\.conf\.)`)
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "stable_secret") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
