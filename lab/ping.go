package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// pingInterval is the time between echo requests while Ping waits.
const pingInterval = 250 * time.Millisecond

// Ping sends ICMP echo requests from inside the namespace to dst every
// 250 ms until a reply comes back (nil) or ctx ends (an error); without a
// deadline on ctx it gives up after 3 s. It needs no ping binary (Debian's
// iputils-ping is not among the tools installed here). dst may be IPv4 or
// IPv6 (with a zone for a link-local address).
func (n *Namespace) Ping(ctx context.Context, dst netip.Addr) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
	}
	network, laddr := "ip4:icmp", "0.0.0.0"
	var request, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if dst.Is6() && !dst.Is4In6() {
		network, laddr = "ip6:ipv6-icmp", "::"
		request, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
		proto = 58
	}
	dst = dst.Unmap()
	target := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}

	var c *icmp.PacketConn
	err := n.Do(func() error {
		if target.Zone != "" {
			// Resolve the zone here: WriteTo would look the name up in
			// the namespace of whatever thread it runs on.
			ifi, err := net.InterfaceByName(target.Zone)
			if err != nil {
				return err
			}
			target.Zone = strconv.Itoa(ifi.Index)
		}
		var err error
		c, err = icmp.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		return fmt.Errorf("pinging %s from %s: %w", dst, n.Name, err)
	}
	defer c.Close()

	var b [2]byte
	_, _ = rand.Read(b[:])
	id := int(binary.BigEndian.Uint16(b[:]))
	buf := make([]byte, 1500)
	for seq := 1; ; seq++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pinging %s from %s: no reply: %w", dst, n.Name, err)
		}
		msg := icmp.Message{Type: request, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("gatewayd lab")}}
		wire, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
		if err != nil {
			return fmt.Errorf("pinging %s from %s: %w", dst, n.Name, err)
		}
		if _, err := c.WriteTo(wire, target); err != nil {
			return fmt.Errorf("pinging %s from %s: %w", dst, n.Name, err)
		}
		until := time.Now().Add(pingInterval)
		if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
			until = dl
		}
		if err := c.SetReadDeadline(until); err != nil {
			return fmt.Errorf("pinging %s from %s: %w", dst, n.Name, err)
		}
		ok, err := awaitEcho(c, buf, proto, reply, id, dst)
		if ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pinging %s from %s: %w", dst, n.Name, err)
		}
	}
}

// awaitEcho reads until the read deadline, reporting whether the echo reply
// with id came from dst. The deadline passing is not an error.
func awaitEcho(c *icmp.PacketConn, buf []byte, proto int, reply icmp.Type, id int, dst netip.Addr) (bool, error) {
	for {
		nr, peer, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		msg, err := icmp.ParseMessage(proto, buf[:nr])
		if err != nil || msg.Type != reply {
			continue
		}
		echo, ok := msg.Body.(*icmp.Echo)
		from, fromOK := peer.(*net.IPAddr)
		if !ok || echo.ID != id || !fromOK {
			continue
		}
		if addr, ok := netip.AddrFromSlice(from.IP); ok && addr.Unmap() == dst.WithZone("") {
			return true, nil
		}
	}
}
