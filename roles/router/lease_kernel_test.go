package router

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"gatewayd/lab"
)

// The DHCP client's lease against real servers: what it does when the
// server refuses, goes away, or never answers again.

// TestUplinkReleaseAfterRestart: a lease kept across a restart is given
// back (DHCPRELEASE) by the next run's Purge or Set(nil), though that run
// never started a client, or by its Set of a static uplink; and its address
// goes.
func TestUplinkReleaseAfterRestart(t *testing.T) {
	lab.RequireTools(t, "dnsmasq")
	rl, isp := newUplinkLab(t)
	log := dnsmasqISP(t, rl, isp)
	for _, how := range []string{"Purge", "Set(nil)", "Set(static)"} {
		t.Run(how, func(t *testing.T) {
			r := rl.open(t)
			if err := rl.set(r, dhcpUplink()); err != nil {
				t.Fatal(err)
			}
			addr := rl.bound(t, r, 0).Address
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			released := strings.Count(log(), "DHCPRELEASE(eth0) "+addr.Addr().String())
			r = rl.open(t)
			var err error
			switch how {
			case "Purge":
				err = rl.gw.Do(r.Purge)
			case "Set(nil)":
				err = rl.set(r, nil)
			default:
				err = rl.set(r, wanStatic("203.0.113.2/24"))
			}
			if err != nil {
				t.Fatal(err)
			}
			if a := rl.addrs(t, "eth0"); strings.Contains(a, addr.String()) {
				t.Errorf("after %s eth0 has:\n%s", how, a)
			}
			lab.Eventually(t, 5*time.Second, func() error {
				if strings.Count(log(), "DHCPRELEASE(eth0) "+addr.Addr().String()) == released {
					return errors.New("dnsmasq saw no DHCPRELEASE")
				}
				return nil
			})
			owned := 0
			if how == "Set(static)" {
				owned = 1
			}
			if rec, err := loadRecord(rl.state); err != nil || rec.Lease != nil || len(rec.Addresses) != owned {
				t.Errorf("record after %s %+v (%v)", how, rec, err)
			}
		})
	}
}

// TestUplinkMovedToAnotherNetwork: a new socket on the WAN port (a NIC
// re-created, here with its cable in another ISP's network) makes the
// client confirm its lease at once (INIT-REBOOT, RFC 2131 §3.2) instead of
// waiting for T1: the other network's server refuses it, and the box takes
// an address and a default route there.
func TestUplinkMovedToAnotherNetwork(t *testing.T) {
	lab.RequireTools(t, "dnsmasq")
	rl, isp := newUplinkLab(t)
	startDnsmasq(t, rl, isp, "203.0.113") // T1 at a minute
	r := rl.open(t)
	cfg := dhcpUplink()
	if err := rl.set(r, cfg); err != nil {
		t.Fatal(err)
	}
	old := rl.bound(t, r, 0).Address

	other, err := rl.l.Namespace("isp2")
	if err != nil {
		t.Fatal(err)
	}
	theirs := startDnsmasq(t, rl, other, "100.64.0")
	rl.gw.MustRun(t, "ip", "link", "del", "eth0")
	if err := rl.l.Link(rl.gw, "eth0", other, "eth0"); err != nil {
		t.Fatal(err)
	}
	rl.gw.MustRun(t, "ip", "link", "set", "eth0", "down")
	rl.gw.MustRun(t, "ip", "link", "set", "eth0", "address", "02:00:00:00:0e:01", "up")
	if err := other.Addr("eth0", "100.64.0.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := rl.set(r, cfg); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 20*time.Second, func() error {
		u := r.Status().Uplink
		switch {
		case u == nil || u.DHCP == nil || u.DHCP.State != stateBound || !netip.MustParsePrefix("100.64.0.0/24").Contains(u.Address.Addr()):
			return fmt.Errorf("uplink %+v", u)
		case !hasLine(rl.routes(t), "default via 100.64.0.1 dev eth0 proto 177"):
			return fmt.Errorf("no default route via the new network's router:\n%s", rl.routes(t))
		}
		return nil
	})
	if a := rl.addrs(t, "eth0"); strings.Contains(a, old.String()) {
		t.Errorf("the old network's address is still on eth0:\n%s", a)
	}
	if log := theirs.log(); !strings.Contains(log, "DHCPNAK(eth0) "+old.Addr().String()) {
		t.Errorf("the new network's server refused no request for %s:\n%s", old.Addr(), log)
	}
}

// TestUplinkUnicastsToTheServer: renewals and the release go to the
// server's MAC address, the one its ACK came from (RFC 2131 §4.4.5), not to
// every host on the ISP's link.
func TestUplinkUnicastsToTheServer(t *testing.T) {
	lab.RequireTools(t, "dnsmasq")
	rl, isp := newUplinkLab(t)
	log := dnsmasqISP(t, rl, isp)
	server, err := isp.MAC("eth0")
	if err != nil {
		t.Fatal(err)
	}
	frames := captureToServer(t, isp)
	r := rl.open(t)
	if err := rl.set(r, dhcpUplink()); err != nil {
		t.Fatal(err)
	}
	addr := rl.bound(t, r, 0).Address
	rl.bound(t, r, 1)
	if err := rl.set(r, nil); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(log(), "DHCPRELEASE(eth0) "+addr.Addr().String()) {
			return errors.New("dnsmasq saw no DHCPRELEASE")
		}
		return nil
	})
	seen := map[dhcpv4.MessageType]int{}
	for _, f := range frames() {
		if f.to == netip.IPv4Unspecified() || f.to == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			continue // broadcast by rule: DISCOVER, REQUEST after an OFFER, rebinding
		}
		seen[f.kind]++
		if !bytes.Equal(f.dst, server) {
			t.Errorf("a %s from %s went to %s, want the server's %s", f.kind, f.ciaddr, f.dst, server)
		}
	}
	if seen[dhcpv4.MessageTypeRequest] == 0 || seen[dhcpv4.MessageTypeRelease] == 0 {
		t.Errorf("saw %v from the leased address, want renewals and a release", seen)
	}
}

// dhcpFrame is a DHCP message to a server as it crossed the ISP's link.
type dhcpFrame struct {
	dst    net.HardwareAddr
	to     netip.Addr // the IPv4 destination
	kind   dhcpv4.MessageType
	ciaddr netip.Addr
}

// captureToServer records, on eth0 of ns, every frame carrying a DHCP
// message to port 67, until the test ends.
func captureToServer(t *testing.T, ns *lab.Namespace) func() []dhcpFrame {
	t.Helper()
	var c *packet.Conn
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, nil)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var mu sync.Mutex
	var got []dhcpFrame
	go func() {
		b := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(b)
			if err != nil {
				return
			}
			f := b[:n]
			if len(f) < 14+20 || f[14+9] != unix.IPPROTO_UDP {
				continue
			}
			udp := f[14+int(f[14]&0x0f)*4:]
			if len(udp) < 8 || binary.BigEndian.Uint16(udp[2:4]) != nclient4.ServerPort {
				continue
			}
			m, err := dhcpv4.FromBytes(udp[8:])
			if err != nil {
				continue
			}
			ci, _ := netip.AddrFromSlice(m.ClientIPAddr.To4())
			to := netip.AddrFrom4([4]byte(f[14+16 : 14+20]))
			mu.Lock()
			got = append(got, dhcpFrame{dst: slices.Clone(net.HardwareAddr(f[0:6])), to: to, kind: m.MessageType(), ciaddr: ci})
			mu.Unlock()
		}
	}()
	return func() []dhcpFrame {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// TestUplinkNAK: a server that no longer gives the address refuses the
// renewal (DHCPNAK); the client drops the lease, its address and route
// go, and it takes a new one.
func TestUplinkNAK(t *testing.T) {
	lab.RequireTools(t, "dnsmasq")
	rl, isp := newUplinkLab(t)
	quick := []string{"--dhcp-option=option:T1,2", "--dhcp-option=option:T2,4"}
	first := startDnsmasq(t, rl, isp, "203.0.113", quick...)
	r := rl.open(t)
	if err := rl.set(r, dhcpUplink()); err != nil {
		t.Fatal(err)
	}
	old := rl.bound(t, r, 0).Address
	first.stop(t)
	// The same server, now with another range: the address is not its to give.
	again := startDnsmasq(t, rl, isp, "203.0.113", append(quick, "--dhcp-range=203.0.113.70,203.0.113.80,255.255.255.0,2m")...)
	var now netip.Prefix
	lab.Eventually(t, 20*time.Second, func() error {
		u := r.Status().Uplink
		if u == nil || u.DHCP == nil || u.DHCP.State != stateBound || u.Address.Addr().As4()[3] < 70 {
			return fmt.Errorf("uplink %+v", u)
		}
		now = u.Address
		return nil
	})
	if log := again.log(); !strings.Contains(log, "DHCPNAK(eth0) "+old.Addr().String()) {
		t.Errorf("the server refused no renewal of %s:\n%s", old.Addr(), log)
	}
	a := rl.addrs(t, "eth0")
	if strings.Contains(a, old.String()) || !strings.Contains(a, "inet "+now.String()) || !hasLine(rl.routes(t), wanDefault) {
		t.Errorf("after the NAK eth0 has:\n%s\nand the routes:\n%s", a, rl.routes(t))
	}
}

// TestUplinkRebinding: when the server that gave the lease stops
// answering, the client rebinds at T2 (a broadcast REQUEST) with another
// server on the link, keeping the address and the route.
func TestUplinkRebinding(t *testing.T) {
	lab.RequireTools(t, "dnsmasq")
	rl := newRouterLab(t)
	sw, err := rl.l.Switch("wan")
	if err != nil {
		t.Fatal(err)
	}
	var servers []*lab.Namespace
	for i, name := range []string{"isp", "isp2"} {
		ns, err := rl.l.Namespace(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rl.l.Plug(sw, ns, "eth0"); err != nil {
			t.Fatal(err)
		}
		if err := ns.Addr("eth0", fmt.Sprintf("203.0.113.%d/24", i+1)); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, ns)
	}
	if _, err := rl.l.Plug(sw, rl.gw, "eth0"); err != nil {
		t.Fatal(err)
	}
	quick := []string{"--dhcp-option=option:T1,2", "--dhcp-option=option:T2,4"}
	first := startDnsmasq(t, rl, servers[0], "203.0.113", quick...)
	r := rl.open(t)
	if err := rl.set(r, dhcpUplink()); err != nil {
		t.Fatal(err)
	}
	u := rl.bound(t, r, 0)
	addr, renewals := u.Address, u.DHCP.Renewals
	if u.DHCP.Server != netip.MustParseAddr("203.0.113.1") {
		t.Fatalf("lease from %s, want the first server", u.DHCP.Server)
	}
	other := startDnsmasq(t, rl, servers[1], "203.0.113", quick...)
	first.stop(t)
	lab.Eventually(t, 30*time.Second, func() error {
		u = r.Status().Uplink
		if u.DHCP.State != stateBound || u.DHCP.Server != netip.MustParseAddr("203.0.113.2") || u.DHCP.Renewals <= renewals {
			return fmt.Errorf("lease %+v", *u.DHCP)
		}
		return nil
	})
	if u.Address != addr {
		t.Errorf("rebound to %s, had %s", u.Address, addr)
	}
	if a := rl.addrs(t, "eth0"); !strings.Contains(a, "inet "+addr.String()) || !hasLine(rl.routes(t), wanDefault) {
		t.Errorf("after rebinding eth0 has:\n%s\nand the routes:\n%s", a, rl.routes(t))
	}
	if log := other.log(); !strings.Contains(log, "DHCPACK(eth0) "+addr.Addr().String()) {
		t.Errorf("the other server did not ACK %s:\n%s", addr.Addr(), log)
	}
}

// TestUplinkExpiry: a lease no server extends ends at its expiry: the
// address and the default route go, the record forgets them, and Status
// says the uplink waits for a lease. The lease is one kept by a previous
// run, a few seconds from its end (servers give at least minutes), and no
// server answers on the link.
func TestUplinkExpiry(t *testing.T) {
	rl, _ := newUplinkLab(t)
	rec, err := loadRecord(rl.state)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 0xe, 1}),
		dhcpv4.WithYourIP(net.IPv4(203, 0, 113, 57)), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(203, 0, 113, 1))),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(203, 0, 113, 1))), dhcpv4.WithLeaseTime(8))
	if err != nil {
		t.Fatal(err)
	}
	l, err := newLease("eth0", m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec.Lease = l.stored()
	if err := rec.save(); err != nil {
		t.Fatal(err)
	}
	r := rl.open(t)
	if err := rl.set(r, dhcpUplink()); err != nil {
		t.Fatal(err)
	}
	if a := rl.addrs(t, "eth0"); !strings.Contains(a, "inet 203.0.113.57/24") || !hasLine(rl.routes(t), wanDefault) {
		t.Fatalf("the kept lease was not applied: eth0 has\n%s\nand the routes:\n%s", a, rl.routes(t))
	}
	lab.Eventually(t, 20*time.Second, func() error {
		if a := rl.addrs(t, "eth0"); strings.Contains(a, "203.0.113.57/") {
			return fmt.Errorf("eth0 still has:\n%s", a)
		}
		if routes := rl.routes(t); strings.Contains(routes, "proto 177") {
			return fmt.Errorf("routes:\n%s", routes)
		}
		if st := r.Status(); !hasPending(st.Pending, "dhcp lease on eth0", "waiting for a DHCP lease") || st.Uplink.Address.IsValid() {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if rec, err := loadRecord(rl.state); err != nil || rec.Lease != nil || len(rec.Addresses) != 0 || len(rec.Routes) != 0 {
		t.Errorf("record after the expiry %+v (%v)", rec, err)
	}
}
