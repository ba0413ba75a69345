package daemon_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

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
	waitLinkLocal(t, g.ns, "eth1") // the box's own settles first (no longer tentative)
	src := waitLinkLocal(t, rogue, "eth0")
	before := kernel()

	for range 3 {
		sendRA(t, rogue, "eth0", src)
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

// waitLinkLocal waits until ifname in ns has a link-local address that is
// no longer tentative (an RA must come from one) and returns it.
func waitLinkLocal(t *testing.T, ns *lab.Namespace, ifname string) netip.Addr {
	t.Helper()
	var ll netip.Addr
	lab.Eventually(t, 5*time.Second, func() error {
		out := ns.MustRun(t, "ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")
		f := strings.Fields(out)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet6" && !strings.Contains(out, "tentative") {
				p, err := netip.ParsePrefix(f[i+1])
				if err != nil {
					return err
				}
				ll = p.Addr()
				return nil
			}
		}
		return errors.New("no usable link-local address yet")
	})
	return ll
}

// sendRA sends one router advertisement from ns out of ifname to all nodes:
// router lifetime 1800 s, and prefix 2001:db8:66::/64 on-link and for
// SLAAC.
func sendRA(t *testing.T, ns *lab.Namespace, ifname string, src netip.Addr) {
	t.Helper()
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err := icmp.ListenPacket("ip6:ipv6-icmp", src.WithZone(ifname).String())
		if err != nil {
			return err
		}
		defer c.Close()
		pc := c.IPv6PacketConn()
		if err := pc.SetMulticastInterface(ifi); err != nil {
			return err
		}
		if err := pc.SetMulticastHopLimit(255); err != nil {
			return err
		}
		// Current hop limit 64, no flags, router lifetime, no reachable
		// time or retransmission timer; then a prefix information option.
		body := []byte{64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(body[2:], 1800)
		prefix := make([]byte, 32)
		prefix[0], prefix[1], prefix[2], prefix[3] = 3, 4, 64, 0xc0 // type, length (×8 bytes), /64, on-link + autonomous
		binary.BigEndian.PutUint32(prefix[4:], 86400)               // valid lifetime
		binary.BigEndian.PutUint32(prefix[8:], 14400)               // preferred lifetime
		copy(prefix[16:], netip.MustParseAddr("2001:db8:66::").AsSlice())
		msg := icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: append(body, prefix...)}}
		wire, err := msg.Marshal(nil) // the kernel fills in the checksum
		if err != nil {
			return err
		}
		_, err = c.WriteTo(wire, &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: ifname})
		return err
	})
	if err != nil {
		t.Fatalf("sending an RA from %s: %v", ns.Name, err)
	}
}
