package ether

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// rig: the gateway (eth1, 192.168.1.10/24) and a neighbour (eth0,
// 192.168.1.50/24) on one switch, and a Conn on the gateway's eth1.
type rig struct {
	l      *lab.Lab
	sw     *lab.Switch
	gw, nb *lab.Namespace
	gwMAC  net.HardwareAddr
	nbMAC  net.HardwareAddr
	c      *Conn
}

func newRig(t *testing.T) *rig {
	t.Helper()
	lab.Require(t)
	r := &rig{l: lab.New(t)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	r.sw, err = r.l.Switch("lan")
	must(err)
	r.gw, err = r.l.Namespace("gw")
	must(err)
	r.nb, err = r.l.Namespace("nb")
	must(err)
	r.gwMAC, err = r.l.Plug(r.sw, r.gw, "eth1")
	must(err)
	r.nbMAC, err = r.l.Plug(r.sw, r.nb, "eth0")
	must(err)
	must(r.gw.Addr("eth1", "192.168.1.10/24"))
	must(r.nb.Addr("eth0", "192.168.1.50/24"))
	r.c = r.open(t)
	return r
}

// open opens a Conn on eth1 from inside the gateway's namespace; it is
// closed when the test ends.
func (r *rig) open(t *testing.T) *Conn {
	t.Helper()
	var c *Conn
	err := r.gw.Do(func() error {
		ifi, err := net.InterfaceByName("eth1")
		if err != nil {
			return err
		}
		c, err = Open(ifi.Index)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// index is eth1's interface index in the gateway.
func (r *rig) index(t *testing.T) int {
	t.Helper()
	var idx int
	err := r.gw.Do(func() error {
		ifi, err := net.InterfaceByName("eth1")
		if err == nil {
			idx = ifi.Index
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestOpenLearnsTheMAC(t *testing.T) {
	r := newRig(t)
	if got := r.c.HardwareAddr().String(); got != r.gwMAC.String() {
		t.Errorf("HardwareAddr = %s, want eth1's %s", got, r.gwMAC)
	}
	if got, want := r.c.Index(), r.index(t); got != want {
		t.Errorf("Index = %d, want %d", got, want)
	}
	if err := r.gw.Do(func() error { _, err := Open(0); return err }); err == nil {
		t.Error("Open(0), which would bind to every interface, succeeded")
	}
	if err := r.gw.Do(func() error {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		c, err := Open(lo.Index)
		if err == nil {
			c.Close()
			return errors.New("Open(lo) succeeded")
		}
		if !strings.Contains(err.Error(), "not an Ethernet interface") {
			return fmt.Errorf("Open(lo): %w", err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

func TestProbe(t *testing.T) {
	r := newRig(t)
	r.gw.MustRun(t, "ip", "addr", "add", "192.168.1.3/24", "dev", "eth1")
	ctx := context.Background()

	// Called from the test's goroutine, outside the namespace: the socket
	// is already there.
	holder, err := r.c.Probe(ctx, ip("192.168.1.50"), 2*time.Second)
	if err != nil || holder.String() != r.nbMAC.String() {
		t.Fatalf("Probe(the neighbour's address) = %v, %v; want %v", holder, err, r.nbMAC)
	}
	holder, err = r.c.Probe(ctx, ip("192.168.1.99"), 300*time.Millisecond)
	if err != nil || holder != nil {
		t.Fatalf("Probe(a free address) = %v, %v; want nobody", holder, err)
	}
	holder, err = r.c.Probe(ctx, ip("192.168.1.3"), 300*time.Millisecond)
	if err != nil || holder != nil {
		t.Fatalf("Probe(our own address) = %v, %v; want nobody", holder, err)
	}
	// Probes teach the neighbour nothing (sender IP 0.0.0.0).
	if out := r.nb.MustRun(t, "ip", "neigh", "show", "dev", "eth0"); strings.Contains(out, r.gwMAC.String()) {
		t.Errorf("the neighbour learnt %q from probes", out)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.c.Probe(cctx, ip("192.168.1.99"), time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Probe with a cancelled context: %v", err)
	}
	if _, err := r.c.Probe(ctx, ip("0.0.0.0"), time.Second); err == nil {
		t.Error("Probe(0.0.0.0) succeeded")
	}
}

// TestProbeSeesAnotherProbe: two hosts probing the same free address at once
// both back off (RFC 5227 2.1.1); nobody answers, the other probe is the
// conflict.
func TestProbeSeesAnotherProbe(t *testing.T) {
	lab.RequireTools(t, "arping")
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd, err := r.nb.Start(ctx, "arping", "-D", "-c", "5", "-I", "eth0", "192.168.1.77")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	holder, err := r.c.Probe(ctx, ip("192.168.1.77"), 3*time.Second)
	if err != nil || holder.String() != r.nbMAC.String() {
		t.Fatalf("Probe while the neighbour probes too = %v, %v; want %v", holder, err, r.nbMAC)
	}
}

func TestConcurrentProbesShareTheReader(t *testing.T) {
	r := newRig(t)
	for _, a := range []string{"192.168.1.51/24", "192.168.1.52/24"} {
		r.nb.MustRun(t, "ip", "addr", "add", a, "dev", "eth0")
	}
	errs := make(chan error, 4)
	for _, a := range []string{"192.168.1.50", "192.168.1.51", "192.168.1.52", "192.168.1.98"} {
		go func() {
			holder, err := r.c.Probe(context.Background(), ip(a), time.Second)
			switch {
			case err != nil:
				errs <- err
			case a == "192.168.1.98" && holder != nil:
				errs <- fmt.Errorf("%s: held by %s, want nobody", a, holder)
			case a != "192.168.1.98" && holder.String() != r.nbMAC.String():
				errs <- fmt.Errorf("%s: held by %v, want %s", a, holder, r.nbMAC)
			default:
				errs <- nil
			}
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestAnnounceUpdatesTheNeighbour(t *testing.T) {
	r := newRig(t)
	r.gw.MustRun(t, "ip", "addr", "add", "192.168.1.3/24", "dev", "eth1")
	// The neighbour believes 192.168.1.3 lives at the box it moved from.
	r.nb.MustRun(t, "ip", "neigh", "replace", "192.168.1.3", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")
	if err := r.c.Announce(ip("192.168.1.3")); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 2*time.Second, func() error {
		out := r.nb.MustRun(t, "ip", "neigh", "show", "192.168.1.3", "dev", "eth0")
		if !strings.Contains(out, "lladdr "+r.gwMAC.String()) {
			return fmt.Errorf("neighbour's entry for 192.168.1.3: %q, want lladdr %s", strings.TrimSpace(out), r.gwMAC)
		}
		return nil
	})
	if err := r.c.Announce(ip("2001:db8::1")); err == nil {
		t.Error("Announce of an IPv6 address succeeded")
	}
}

func TestRebindAfterTheNICIsRecreated(t *testing.T) {
	r := newRig(t)
	old := r.c.Index()
	r.gw.MustRun(t, "ip", "link", "del", "eth1")
	if err := r.c.Announce(ip("192.168.1.10")); err == nil {
		t.Error("Announce on a deleted NIC succeeded")
	}
	newMAC, err := r.l.Plug(r.sw, r.gw, "eth1")
	if err != nil {
		t.Fatal(err)
	}
	idx := r.index(t)
	if idx == old {
		t.Fatalf("the new eth1 has the old index %d", idx)
	}
	// From the test's goroutine, outside the namespace: Rebind opens
	// nothing, it binds the socket it has.
	if err := r.c.Rebind(idx); err != nil {
		t.Fatal(err)
	}
	if r.c.Index() != idx || r.c.HardwareAddr().String() != newMAC.String() {
		t.Errorf("after Rebind: index %d MAC %s, want %d %s", r.c.Index(), r.c.HardwareAddr(), idx, newMAC)
	}
	holder, err := r.c.Probe(context.Background(), ip("192.168.1.50"), 2*time.Second)
	if err != nil || holder.String() != r.nbMAC.String() {
		t.Fatalf("Probe after Rebind = %v, %v; want %v", holder, err, r.nbMAC)
	}
	if err := r.c.Rebind(idx + 1000); err == nil {
		t.Error("Rebind to an index no interface has succeeded")
	}
	if r.c.Index() != idx {
		t.Errorf("a failed Rebind moved the socket to %d", r.c.Index())
	}
}

// TestOpenUnboundBindsLater opens the socket before the NIC exists, as
// package aliases does for a NIC that is not there yet, and binds it from
// outside the namespace once the NIC appears.
func TestOpenUnboundBindsLater(t *testing.T) {
	r := newRig(t)
	r.gw.MustRun(t, "ip", "link", "del", "eth1")
	var c *Conn
	if err := r.gw.Do(func() (err error) { c, err = OpenUnbound(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.Index() != 0 || c.HardwareAddr() != nil {
		t.Errorf("unbound: index %d MAC %s, want 0 and none", c.Index(), c.HardwareAddr())
	}
	if err := c.Announce(ip("192.168.1.3")); !errors.Is(err, ErrUnbound) {
		t.Errorf("Announce on an unbound socket = %v, want ErrUnbound", err)
	}
	if _, err := c.Probe(context.Background(), ip("192.168.1.50"), time.Second); !errors.Is(err, ErrUnbound) {
		t.Errorf("Probe on an unbound socket = %v, want ErrUnbound", err)
	}
	newMAC, err := r.l.Plug(r.sw, r.gw, "eth1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Rebind(r.index(t)); err != nil {
		t.Fatal(err)
	}
	if c.HardwareAddr().String() != newMAC.String() {
		t.Errorf("after Rebind: MAC %s, want %s", c.HardwareAddr(), newMAC)
	}
	holder, err := c.Probe(context.Background(), ip("192.168.1.50"), 2*time.Second)
	if err != nil || holder.String() != r.nbMAC.String() {
		t.Fatalf("Probe after Rebind = %v, %v; want %v", holder, err, r.nbMAC)
	}
}

func TestSendUDPReachesAPeerWithoutANeighbourEntry(t *testing.T) {
	r := newRig(t)
	pc, err := r.nb.ListenPacket(context.Background(), &net.ListenConfig{}, "udp4", "192.168.1.50:6800")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// 192.168.1.2 is on no interface: the frame is built whole and sent as is.
	src := netip.MustParseAddrPort("192.168.1.2:67")
	if err := r.c.SendUDP(r.nbMAC, src, netip.MustParseAddrPort("192.168.1.50:6800"), []byte("offer")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("the peer received nothing: %v", err)
	}
	if string(buf[:n]) != "offer" || from.String() != src.String() {
		t.Errorf("the peer received %q from %s, want %q from %s", buf[:n], from, "offer", src)
	}
	if out := r.gw.MustRun(t, "ip", "neigh", "show", "dev", "eth1"); strings.Contains(out, "192.168.1.50") {
		t.Errorf("the gateway resolved the peer: %q", out)
	}
}

func TestCloseEndsProbes(t *testing.T) {
	r := newRig(t)
	done := make(chan error, 1)
	go func() {
		_, err := r.c.Probe(context.Background(), ip("192.168.1.99"), time.Minute)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it send its first probe
	r.c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Probe after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Probe still running 10 s after Close")
	}
	if err := r.c.Announce(ip("192.168.1.10")); err == nil {
		t.Error("Announce after Close succeeded")
	}
}

// TestSendNeverWaits: frames held in a slow queue fill the socket's send
// buffer; a send then fails at once instead of waiting for room (a DHCP
// reply sent from the lease log's writer must not stall it).
func TestSendNeverWaits(t *testing.T) {
	r := newRig(t)
	// A queue that lets one frame out every few seconds keeps the rest, and
	// the socket's buffer with them.
	r.gw.MustRun(t, "tc", "qdisc", "add", "dev", "eth1", "root", "tbf", "rate", "1kbit", "burst", "1600", "limit", "10000000")
	done := make(chan error, 1)
	go func() {
		payload := make([]byte, 1000)
		for range 2000 { // some 2 MB: more than any default send buffer
			if err := r.c.Send(r.nbMAC, 0x88b5, payload); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("2,000 frames into a stalled queue were all taken: the test did not fill the buffer")
		}
		t.Logf("a send into a full buffer: %v", err)
	case <-time.After(30 * time.Second): // a hang detector, not a timing
		t.Fatal("a send waited for room in the socket's buffer")
	}
}
