package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// site is the seed scenario on one wire: the gateway (eth1 with a primary
// address and the seed's aliases), a client in each zone, and an upstream
// host that also holds an address outside every zone (203.0.113.10).
type site struct {
	l        *lab.Lab
	gw       *lab.Namespace
	lan, lab *lab.Namespace
	up       *lab.Namespace
	fw       *Firewall
}

const (
	lanClient = "192.168.1.100"
	labClient = "10.0.0.100"
	upAddr    = "192.168.1.254"
	outside   = "203.0.113.10" // on the upstream host, outside every zone
	gwPrimary = "192.168.1.5"
)

func newSite(t *testing.T) *site {
	t.Helper()
	lab.Require(t)
	l := lab.New(t)
	s := &site{l: l}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sw, err := l.Switch("wire")
	must(err)
	for _, n := range []struct {
		ns   **lab.Namespace
		name string
	}{{&s.gw, "gw"}, {&s.lan, "lan"}, {&s.lab, "lab"}, {&s.up, "up"}} {
		ns, err := l.Namespace(n.name)
		must(err)
		*n.ns = ns
	}
	_, err = l.Plug(sw, s.gw, "eth1")
	must(err)
	for _, ns := range []*lab.Namespace{s.lan, s.lab, s.up} {
		_, err = l.Plug(sw, ns, "eth0")
		must(err)
	}
	// The primary address first, then the seed's aliases.
	for _, a := range []string{gwPrimary + "/24", "192.168.1.1/24", "192.168.1.2/24", "192.168.1.3/24", "10.0.0.1/24"} {
		must(s.gw.Addr("eth1", a))
	}
	must(s.lan.Addr("eth0", lanClient+"/24"))
	must(s.lab.Addr("eth0", labClient+"/24"))
	must(s.up.Addr("eth0", upAddr+"/24"))
	must(s.up.Addr("lo", outside+"/32"))
	s.lan.MustRun(t, "ip", "route", "add", "default", "via", "192.168.1.1")
	s.lab.MustRun(t, "ip", "route", "add", "default", "via", "10.0.0.1")
	s.gw.MustRun(t, "ip", "route", "add", "default", "via", upAddr)
	// What the router role does; set here so this package's tests stand alone.
	for _, k := range []string{"net.ipv4.conf.all.send_redirects", "net.ipv4.conf.eth1.send_redirects"} {
		must(s.gw.Sysctl(k, "0"))
	}
	must(s.gw.Sysctl("net.ipv4.ip_forward", "1"))
	s.fw = openIn(t, s.gw)
	return s
}

// serveTCP accepts connections on addr inside ns and records the remote
// addresses; it stops when the test ends.
func serveTCP(t *testing.T, ns *lab.Namespace, addr string) *peers {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &peers{}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.add(c.RemoteAddr().(*net.TCPAddr).IP.String())
			_, _ = c.Write([]byte("hi"))
			_ = c.Close()
		}
	}()
	return p
}

// serveUDP echoes datagrams on addr inside ns and records the sources.
func serveUDP(t *testing.T, ns *lab.Namespace, addr string) *peers {
	t.Helper()
	var pc net.PacketConn
	err := ns.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &peers{}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p.add(from.(*net.UDPAddr).IP.String())
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return p
}

// peers is what a listener saw.
type peers struct {
	mu   sync.Mutex
	seen []string
}

func (p *peers) add(a string) {
	p.mu.Lock()
	p.seen = append(p.seen, a)
	p.mu.Unlock()
}

func (p *peers) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func (p *peers) count() int { return len(p.list()) }

// dialTCP connects from ns to addr and reads the greeting.
func dialTCP(ns *lab.Namespace, addr string, timeout time.Duration) error {
	return ns.Do(func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		buf := make([]byte, 2)
		_, err = c.Read(buf)
		return err
	})
}

// askUDP sends one datagram from ns to addr and waits for the echo.
func askUDP(ns *lab.Namespace, addr string, timeout time.Duration) error {
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		c, err = net.Dial("udp4", addr)
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("q")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	_, err := c.Read(buf)
	return err
}

// expectReach fails unless dial reaches the peer.
func expectReach(t *testing.T, what string, dial func(time.Duration) error) {
	t.Helper()
	var err error
	for try := 0; try < 3; try++ { // the first packet may wait for ARP
		if err = dial(2 * time.Second); err == nil {
			return
		}
	}
	t.Errorf("%s: want reached, got %v", what, err)
}

// expectDropped fails unless dial times out: the firewall drops, it never
// rejects (a reset or an ICMP error would come back at once).
func expectDropped(t *testing.T, what string, dial func(time.Duration) error) {
	t.Helper()
	err := dial(400 * time.Millisecond)
	switch {
	case err == nil:
		t.Errorf("%s: want dropped, but it was reached", what)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		t.Errorf("%s: want a silent drop, got %v", what, err)
	case !isTimeout(err):
		t.Errorf("%s: want a timeout, got %v", what, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

func tcp(ns *lab.Namespace, addr string) func(time.Duration) error {
	return func(d time.Duration) error { return dialTCP(ns, addr, d) }
}

func udp(ns *lab.Namespace, addr string) func(time.Duration) error {
	return func(d time.Duration) error { return askUDP(ns, addr, d) }
}

func ping(ns *lab.Namespace, addr string) func(time.Duration) error {
	return func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		err := ns.Ping(ctx, netip.MustParseAddr(addr))
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err)
		}
		return err
	}
}

// dialTCPFrom connects from local address laddr inside ns.
func dialTCPFrom(ns *lab.Namespace, laddr, addr string) func(time.Duration) error {
	return func(d time.Duration) error {
		return ns.Do(func() error {
			dl := net.Dialer{Timeout: d, LocalAddr: &net.TCPAddr{IP: net.ParseIP(laddr)}}
			c, err := dl.Dial("tcp4", addr)
			if err != nil {
				return err
			}
			return c.Close()
		})
	}
}
