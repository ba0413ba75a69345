package router

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatewayd/firewall"
	"gatewayd/lab"
)

// TestUplinkDHCPBehindTheFirewall: with gatewayd's table in place for a DHCP
// WAN port, which accepts nothing unsolicited from the ISP (no rule for udp
// 67 → 68), the client still gets its lease, renews it, and the box reaches
// beyond the ISP: the client's packet socket reads before netfilter and
// writes past it.
func TestUplinkDHCPBehindTheFirewall(t *testing.T) {
	lab.RequireTools(t, "dnsmasq")
	rl, isp := newUplinkLab(t)
	log := dnsmasqISP(t, rl, isp)
	var fw *firewall.Firewall
	if err := rl.gw.Do(func() error {
		var err error
		fw, err = firewall.Open(firewall.Options{Logger: lab.Logger(t)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fw.Close() })
	p := firewall.Policy{
		Interface:  "eth1",
		Aliases:    []firewall.AliasInfo{{Name: "router", Addr: netip.MustParseAddr("192.168.1.1")}},
		Zones:      []firewall.ZoneInfo{{Name: "lan", Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}, Forward: []string{firewall.UpstreamZone}}},
		Masquerade: true,
		Upstream:   &firewall.Uplink{Interface: "eth0"},
	}
	if err := fw.Set(firewall.Build(p)); err != nil {
		t.Fatal(err)
	}

	r := rl.open(t)
	if err := rl.set(r, dhcpUplink()); err != nil {
		t.Fatal(err)
	}
	addr := rl.bound(t, r, 0).Address
	if got := rl.bound(t, r, 1).Address; got != addr {
		t.Errorf("renewed to %s, had %s", got, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rl.gw.Ping(ctx, netip.MustParseAddr("198.51.100.1")); err != nil {
		t.Errorf("gateway → beyond the ISP through the table: %v", err)
	}
	c, err := fw.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// The server's answer to the renewal, unicast to the WAN address, meets
	// the drop rule (the socket has read it already).
	for _, z := range c.Zones {
		if z.Zone == firewall.UpstreamZone && z.Drop.Packets == 0 {
			t.Errorf("upstream counters %+v: the DHCP server's answers should be dropped", z)
		}
	}
	if out := log(); !strings.Contains(out, "DHCPACK(eth0) "+addr.Addr().String()) {
		t.Errorf("dnsmasq did not ACK %s:\n%s", addr.Addr(), out)
	}
}
