package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// Real packets between lab namespaces, for the tests that check what the
// daemon's ruleset lets through: listeners that record who reached them,
// and probes that say whether a peer answered.

// listener is a TCP or UDP server in a lab namespace (opened from the test
// process, so it outlives any daemon restart) that answers every peer and
// records the peer's address.
type listener struct {
	mu   sync.Mutex
	seen []string
}

func (l *listener) add(a string) {
	l.mu.Lock()
	l.seen = append(l.seen, a)
	l.mu.Unlock()
}

// peers are the addresses that reached the listener, in order.
func (l *listener) peers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}

// saw reports whether addr reached the listener.
func (l *listener) saw(addr string) bool { return slices.Contains(l.peers(), addr) }

// serveTCP accepts on addr inside ns, records every peer's address, greets
// it with "ok" and then echoes what it sends until it closes: an SSH-like
// service of the box (a session stays open as long as the client wants), or
// a host's.
func serveTCP(t testing.TB, ns *lab.Namespace, addr string) *listener {
	t.Helper()
	ln, err := ns.Listen(context.Background(), &net.ListenConfig{}, "tcp4", addr)
	if err != nil {
		t.Fatalf("listening on tcp %s in %s: %v", addr, ns.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	l := &listener{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.add(c.RemoteAddr().(*net.TCPAddr).IP.String())
			go func() {
				defer c.Close()
				if _, err := c.Write([]byte("ok")); err == nil {
					_, _ = io.Copy(c, c)
				}
			}()
		}
	}()
	return l
}

// session is an open TCP connection to a serveTCP listener, as an admin's
// SSH session is: it must keep working while the box's policy changes.
type session struct{ c net.Conn }

// openSession connects from ns to addr and reads the greeting.
func openSession(t testing.TB, ns *lab.Namespace, addr string) *session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), openTime)
	defer cancel()
	c, err := ns.DialContext(ctx, &net.Dialer{}, "tcp4", addr)
	if err != nil {
		t.Fatalf("opening a session from %s to %s: %v", ns.Name, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(openTime))
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatalf("the session from %s to %s got no greeting: %v", ns.Name, addr, err)
	}
	return &session{c: c}
}

// alive sends a line on the session and reads it back.
func (s *session) alive() error {
	_ = s.c.SetDeadline(time.Now().Add(openTime))
	line := []byte("still there?\n")
	if _, err := s.c.Write(line); err != nil {
		return err
	}
	_, err := io.ReadFull(s.c, make([]byte, len(line)))
	return err
}

// serveUDP echoes every datagram on addr inside ns and records its source.
func serveUDP(t testing.TB, ns *lab.Namespace, addr string) *listener {
	t.Helper()
	pc, err := ns.ListenPacket(context.Background(), &net.ListenConfig{}, "udp4", addr)
	if err != nil {
		t.Fatalf("listening on udp %s in %s: %v", addr, ns.Name, err)
	}
	t.Cleanup(func() { pc.Close() })
	l := &listener{}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			l.add(from.(*net.UDPAddr).IP.String())
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return l
}

// probe tries one exchange with a peer within the time given: nil when the
// peer answered.
type probe func(time.Duration) error

// tcpTo connects from ns to addr and reads the greeting.
func tcpTo(ns *lab.Namespace, addr string) probe {
	return func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		c, err := ns.DialContext(ctx, &net.Dialer{}, "tcp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(d))
		_, err = c.Read(make([]byte, 2))
		return err
	}
}

// udpTo sends one datagram from ns to addr and waits for the echo.
func udpTo(ns *lab.Namespace, addr string) probe {
	return func(d time.Duration) error {
		c, err := ns.DialContext(context.Background(), &net.Dialer{}, "udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(d))
		if _, err := c.Write([]byte("q")); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 16))
		return err
	}
}

// pingTo sends ICMP echo requests from ns to addr until one is answered.
func pingTo(ns *lab.Namespace, addr string) probe {
	return func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if err := ns.Ping(ctx, netip.MustParseAddr(addr)); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err)
			}
			return err
		}
		return nil
	}
}

// openTime is how long a probe that should pass may take (the first packet
// may wait for ARP on a busy machine); closedTime how long a probe that
// should be dropped is given: a packet that passes comes back in
// milliseconds.
const (
	openTime   = 3 * time.Second
	closedTime = 600 * time.Millisecond
)

// wantOpen fails the test unless p reaches its peer.
func wantOpen(t testing.TB, what string, p probe) {
	t.Helper()
	if err := p(openTime); err != nil {
		t.Errorf("%s: want it reached, got %v", what, err)
	}
}

// wantClosed fails the test unless p times out: the firewall drops, it
// never rejects (a reset or an ICMP error would come back at once).
func wantClosed(t testing.TB, what string, p probe) {
	t.Helper()
	err := p(closedTime)
	var ne net.Error
	switch {
	case err == nil:
		t.Errorf("%s: want it dropped, but it was reached", what)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		t.Errorf("%s: want a silent drop, got %v", what, err)
	case !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded):
		t.Errorf("%s: want a timeout, got %v", what, err)
	}
}

// check is one probe and what it should find.
type check struct {
	what string
	p    probe
	open bool
}

// expect runs every check: the open ones first, one by one (they warm the
// ARP caches), then the closed ones all at once, since each waits out its
// whole time.
func expect(t testing.TB, checks ...check) {
	t.Helper()
	for _, c := range checks {
		if c.open {
			wantOpen(t, c.what, c.p)
		}
	}
	var wg sync.WaitGroup
	for _, c := range checks {
		if !c.open {
			wg.Go(func() { wantClosed(t, c.what, c.p) })
		}
	}
	wg.Wait()
}
