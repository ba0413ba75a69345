package daemon_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestRouterAdvertisementIgnored: a host in the lan zone on the alias wire
// sends router advertisements (a default router and a SLAAC prefix). A
// plain host on the same wire takes them (so they are RAs the kernel acts
// on); the box changes no route and takes no address.
func TestRouterAdvertisementIgnored(t *testing.T) {
	g := newGateway(t)
	rogue := namespace(t, g.lab, "rogue")
	host := namespace(t, g.lab, "host")
	for _, ns := range []*lab.Namespace{rogue, host} {
		if _, err := g.lab.Plug(g.sw, ns, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	rogue.MustRun(t, "ip", "addr", "add", "198.51.100.66/24", "dev", "eth0") // in zone lan
	g.start()
	kernel := func() string {
		var b strings.Builder
		for _, argv := range [][]string{
			{"ip", "-6", "route", "show", "table", "all"},
			{"ip", "-4", "route", "show", "table", "all"},
			{"ip", "-6", "addr", "show"},
		} {
			b.WriteString(g.ns.MustRun(t, argv...))
		}
		return b.String()
	}
	g.ns.LinkLocal(t, "eth1") // the box's own settles first (no longer tentative)
	src := rogue.LinkLocal(t, "eth0")
	before := kernel()

	for range 3 {
		rogue.SendRA(t, "eth0", netip.MustParsePrefix("2001:db8:66::/64"))
		time.Sleep(200 * time.Millisecond)
	}
	lab.Eventually(t, 5*time.Second, func() error {
		out := host.MustRun(t, "ip", "-6", "route", "show", "default")
		if !strings.Contains(out, "via "+src.String()) || !strings.Contains(out, "proto ra") {
			return fmt.Errorf("the plain host took no default route from the RA: %q", out)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // the box had as long as the host, and more
	if after := kernel(); after != before {
		t.Errorf("the RA changed the box's routes or addresses:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if v := strings.TrimSpace(g.ns.MustRun(t, "cat", "/proc/sys/net/ipv6/conf/eth1/accept_ra")); v != "0" {
		t.Errorf("accept_ra on the alias NIC is %s, want 0", v)
	}
}
