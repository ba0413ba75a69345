package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// LinkLocal waits until ifname in the namespace has a link-local address
// that is no longer tentative (a router advertisement must come from one,
// and a socket cannot bind a tentative one) and returns it.
func (n *Namespace) LinkLocal(t TB, ifname string) netip.Addr {
	t.Helper()
	var addr netip.Addr
	Eventually(t, 5*time.Second, func() error {
		out := n.MustRun(t, "ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")
		if strings.Contains(out, "tentative") {
			return fmt.Errorf("link-local address still tentative: %s", out)
		}
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
				addr = p.Addr()
				return nil
			}
		}
		return fmt.Errorf("no link-local address on %s in %s: %q", ifname, n.Name, out)
	})
	return addr
}

// SendRA sends, from the namespace out of ifname, one router advertisement
// to all nodes as a router would: from ifname's link-local address, hop
// limit 255, a router lifetime of 1800 s; with a valid prefix, a prefix
// information option for it (on-link, for SLAAC, valid a day, preferred
// 4 h).
func (n *Namespace) SendRA(t TB, ifname string, prefix netip.Prefix) {
	t.Helper()
	src := n.LinkLocal(t, ifname)
	err := n.Do(func() error {
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
		// time or retransmission timer; then the prefix option, if any.
		body := []byte{64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(body[2:], 1800)
		if prefix.IsValid() {
			opt := make([]byte, 32)
			opt[0], opt[1], opt[2], opt[3] = 3, 4, byte(prefix.Bits()), 0xc0 // type, length (×8 bytes), prefix length, on-link + autonomous
			binary.BigEndian.PutUint32(opt[4:], 86400)                       // valid lifetime
			binary.BigEndian.PutUint32(opt[8:], 14400)                       // preferred lifetime
			copy(opt[16:], prefix.Masked().Addr().AsSlice())
			body = append(body, opt...)
		}
		msg := icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: body}}
		wire, err := msg.Marshal(nil) // the kernel fills in the checksum
		if err != nil {
			return err
		}
		_, err = c.WriteTo(wire, &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: ifname})
		return err
	})
	if err != nil {
		t.Fatalf("sending an RA from %s: %v", n.Name, err)
	}
}
