package firewall

import (
	"context"
	"net"
	"testing"
	"time"

	icmpmsg "golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"gatewayd/lab"
)

// managed is the seed with lan allowed ssh and ping on the box's own
// addresses (the controller's default management for the zone of the
// primary address).
func managed(p Policy) Policy {
	p.Management = []string{"ssh", "ping"}
	seedZone(&p, "lan").Manage = []ServicePort{{"ssh", tcpPort(22, 22)}, {"ping", icmp}}
	return p
}

// TestManagement: the admin's way in survives. An SSH-like listener on the
// primary address, and on an address added by hand, stays reachable from the
// management zone across the first start, a reload and a restart, and an
// admin session open before the first start survives it; other zones and
// the upstream do not reach it, and management opens nothing else (not ssh
// on an alias, nor another port on the primary).
func TestManagement(t *testing.T) {
	s := newSite(t)
	handAdded := "192.168.1.6"
	if err := s.gw.Addr("eth1", handAdded+"/24"); err != nil {
		t.Fatal(err)
	}
	serveEcho(t, s.gw, gwPrimary+":22")
	serveTCP(t, s.gw, handAdded+":22")
	serveTCP(t, s.gw, "192.168.1.3:22")
	serveTCP(t, s.gw, gwPrimary+":2222")
	admin := openSession(t, s.lan, gwPrimary+":22")
	check := func(when string) {
		t.Helper()
		if err := admin.echo(); err != nil {
			t.Errorf("%s: the admin's session: %v", when, err)
		}
		expectReach(t, when+": lan → ssh on the primary address", echoes(s.lan, gwPrimary+":22"))
		expectReach(t, when+": lan → ssh on a hand-added address", tcp(s.lan, handAdded+":22"))
		expectReach(t, when+": lan → ping the primary address", ping(s.lan, gwPrimary))
		for _, c := range []struct {
			what string
			dial func(time.Duration) error
		}{
			{"lab → ssh on the primary address", tcp(s.lab, gwPrimary+":22")},
			{"upstream → ssh on the primary address", tcp(s.up, gwPrimary+":22")},
			{"lan → ssh on the dns alias (management is not on aliases)", tcp(s.lan, "192.168.1.3:22")},
			{"lan → another port of the primary address", tcp(s.lan, gwPrimary+":2222")},
		} {
			expectDropped(t, when+": "+c.what, c.dial)
		}
	}
	if err := s.fw.Set(Build(managed(seedPolicy()))); err != nil {
		t.Fatal(err)
	}
	check("first start")
	if err := s.fw.Set(Build(managed(seedLabSSH()))); err != nil {
		t.Fatal(err)
	}
	check("reload")
	if err := s.fw.Close(); err != nil {
		t.Fatal(err)
	}
	s.fw = openIn(t, s.gw)
	if err := s.fw.Set(Build(managed(seedLabSSH()))); err != nil {
		t.Fatal(err)
	}
	check("restart")
}

// echoes connects from ns to an echo server at addr and checks it echoes.
func echoes(ns *lab.Namespace, addr string) func(time.Duration) error {
	return func(d time.Duration) error {
		return ns.Do(func() error {
			c, err := net.DialTimeout("tcp4", addr, d)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(d))
			if _, err := c.Write([]byte("x")); err != nil {
				return err
			}
			_, err = c.Read(make([]byte, 1))
			return err
		})
	}
}

// TestPingIsEchoOnly: the ping service opens ICMP echo requests, not every
// ICMP type. A timestamp request, which the kernel answers without the
// table, goes unanswered on an alias lan may ping.
func TestPingIsEchoOnly(t *testing.T) {
	s := newSite(t)
	expectReach(t, "without the table, lan → timestamp request to the router", timestamp(s.lan, "192.168.1.1"))
	if err := s.fw.Set(Build(seedPolicy())); err != nil {
		t.Fatal(err)
	}
	expectReach(t, "lan → ping the router", ping(s.lan, "192.168.1.1"))
	expectDropped(t, "lan → timestamp request to the router", timestamp(s.lan, "192.168.1.1"))
}

// timestamp sends an ICMP timestamp request from ns to dst and waits for the
// reply.
func timestamp(ns *lab.Namespace, dst string) func(time.Duration) error {
	return func(d time.Duration) error {
		var c *icmpmsg.PacketConn
		if err := ns.Do(func() error {
			var err error
			c, err = icmpmsg.ListenPacket("ip4:icmp", "0.0.0.0")
			return err
		}); err != nil {
			return err
		}
		defer c.Close()
		// Identifier, sequence, then the originate, receive and transmit
		// timestamps.
		body := []byte{0x47, 0x57, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		wire, err := (&icmpmsg.Message{Type: ipv4.ICMPTypeTimestamp, Body: &icmpmsg.RawBody{Data: body}}).Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(wire, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		deadline, _ := ctx.Deadline()
		_ = c.SetReadDeadline(deadline)
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return err // a timeout when nothing came back
			}
			m, err := icmpmsg.ParseMessage(1, buf[:n])
			if err == nil && m.Type == ipv4.ICMPTypeTimestampReply && from.String() == dst {
				return nil
			}
		}
	}
}
