package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// The WAN: the gateway's wan0 (203.0.113.2) to the ISP's router (isp,
// 203.0.113.1), behind which a server on the internet holds 198.51.100.80.
const (
	wanGW    = "203.0.113.2"
	ispAddr  = "203.0.113.1"
	internet = "198.51.100.80"
)

// withWAN gives the site a WAN port: the gateway's default route goes out of
// it. The ISP routes the zones' subnets to the gateway, as a hostile ISP
// trying to reach inside would.
func withWAN(t *testing.T, s *site) *lab.Namespace {
	t.Helper()
	isp, err := s.l.Namespace("isp")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.l.Link(s.gw, "wan0", isp, "eth0"),
		s.gw.Addr("wan0", wanGW+"/24"),
		isp.Addr("eth0", ispAddr+"/24"),
		isp.Addr("lo", internet+"/32"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.gw.MustRun(t, "ip", "route", "replace", "default", "via", ispAddr)
	for _, sn := range []string{"192.168.1.0/24", "10.0.0.0/24"} {
		isp.MustRun(t, "ip", "route", "add", sn, "via", wanGW)
	}
	return isp
}

// TestUplinkStatic: with a WAN port of static address, the zones routed to
// the upstream reach the internet SNATed to the WAN address; the ISP side
// reaches nothing inside and no port of the box, and only replies come back.
func TestUplinkStatic(t *testing.T) {
	s := newSite(t)
	isp := withWAN(t, s)
	serveTCP(t, s.gw, "0.0.0.0:22")
	serveTCP(t, s.gw, "0.0.0.0:53")
	serveUDP(t, s.gw, "0.0.0.0:68")
	serveTCP(t, s.lan, "0.0.0.0:8080")
	atNet := serveTCP(t, isp, internet+":80")
	p := seedPolicy()
	p.Upstream = &Uplink{Interface: "wan0", Addr: addr(wanGW)}
	if err := s.fw.Set(Build(p)); err != nil {
		t.Fatal(err)
	}
	expectReach(t, "lan → the internet", tcp(s.lan, internet+":80"))
	expectReach(t, "lab → the internet", tcp(s.lab, internet+":80"))
	for _, src := range atNet.list() {
		if src != wanGW {
			t.Errorf("the internet saw source %s, want every zone SNATed to the WAN address %s", src, wanGW)
		}
	}
	for _, c := range []struct {
		what string
		dial func(time.Duration) error
	}{
		{"isp → lan client", dialTCPFrom(isp, internet, lanClient+":8080")},
		{"isp → WAN address ssh", tcp(isp, wanGW+":22")},
		{"isp → router alias ssh", tcp(isp, "192.168.1.1:22")},
		{"isp → dns alias tcp/53", tcp(isp, "192.168.1.3:53")},
		{"isp → ping the WAN address", ping(isp, wanGW)},
		{"isp → udp 67 → 68 (no DHCP client with a static address)", udpFrom(isp, 67, wanGW+":68")},
	} {
		expectDropped(t, c.what, c.dial)
	}
	c, err := s.fw.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if up := zoneCount(c, UpstreamZone); up.Drop.Packets == 0 || up.Return.Packets == 0 {
		t.Errorf("upstream: drops and the internet's replies should be counted: %+v", up)
	}
	if lan := zoneCount(c, "lan"); lan.Forward.Packets == 0 {
		t.Errorf("lan's traffic to the internet was not counted as forwarded: %+v", lan)
	}
}

// TestUplinkDHCP: a WAN port whose address a DHCP client learns is
// masqueraded, and nothing unsolicited reaches the box: not even udp 67 → 68,
// since the router's DHCP client reads through a packet socket, before the
// table (roles/router's TestUplinkDHCPBehindTheFirewall shows it renews with
// this table in place).
func TestUplinkDHCP(t *testing.T) {
	s := newSite(t)
	isp := withWAN(t, s)
	serveUDP(t, s.gw, "0.0.0.0:68")
	serveUDP(t, s.gw, "0.0.0.0:69")
	atNet := serveTCP(t, isp, internet+":80")
	p := seedPolicy()
	p.Upstream = &Uplink{Interface: "wan0"}
	if err := s.fw.Set(Build(p)); err != nil {
		t.Fatal(err)
	}
	expectDropped(t, "isp udp 67 → 68", udpFrom(isp, 67, wanGW+":68"))
	expectDropped(t, "isp udp 1067 → 68", udpFrom(isp, 1067, wanGW+":68"))
	expectDropped(t, "isp udp 67 → 69", udpFrom(isp, 67, wanGW+":69"))
	expectReach(t, "lan → the internet", tcp(s.lan, internet+":80"))
	if got := atNet.list(); len(got) == 0 || got[0] != wanGW {
		t.Errorf("the internet saw %v, want lan masqueraded to the WAN address %s", got, wanGW)
	}
}

// TestSingleNICSNAT: without a WAN port the zones reach the upstream router
// on the alias wire SNATed to the router alias, not to whatever address the
// kernel picks (the primary).
func TestSingleNICSNAT(t *testing.T) {
	s := newSite(t)
	atUp := serveTCP(t, s.up, "0.0.0.0:80")
	p := seedPolicy()
	p.SNAT = seedRouter
	if err := s.fw.Set(Build(p)); err != nil {
		t.Fatal(err)
	}
	expectReach(t, "lan → upstream", tcp(s.lan, outside+":80"))
	expectReach(t, "lab → upstream", tcp(s.lab, outside+":80"))
	for _, src := range atUp.list() {
		if src != seedRouter.String() {
			t.Errorf("the upstream saw source %s, want the router alias %s", src, seedRouter)
		}
	}
}

// udpFrom sends one datagram from local port lport inside ns to addr and
// waits for the echo.
func udpFrom(ns *lab.Namespace, lport int, addr string) func(time.Duration) error {
	return func(d time.Duration) error {
		var c net.Conn
		if err := ns.Do(func() error {
			var err error
			dl := net.Dialer{LocalAddr: &net.UDPAddr{Port: lport}}
			c, err = dl.Dial("udp4", addr)
			return err
		}); err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(d))
		if _, err := c.Write([]byte("q")); err != nil {
			return err
		}
		_, err := c.Read(make([]byte, 16))
		return err
	}
}

// TestRouterAdvertisements: a host in a zone on the alias NIC cannot become
// the box's IPv6 router, even on a NIC left with accept_ra on (the router
// role turns it off; the ruleset must drop the RA too), while the ISP can on
// a WAN port that takes RAs. Without the table the same RA from lan is
// taken, which shows the test's RA is one the kernel acts on.
func TestRouterAdvertisements(t *testing.T) {
	s := newSite(t)
	isp := withWAN(t, s)
	for _, k := range []string{"net.ipv6.conf.eth1.accept_ra", "net.ipv6.conf.wan0.accept_ra"} {
		if err := s.gw.Sysctl(k, "2"); err != nil {
			t.Fatal(err)
		}
	}
	raRoute := func(ifname string) string {
		return strings.TrimSpace(s.gw.MustRun(t, "ip", "-6", "route", "show", "default", "dev", ifname, "proto", "ra"))
	}
	s.lan.SendRA(t, "eth0", netip.Prefix{})
	lab.Eventually(t, 5*time.Second, func() error {
		if raRoute("eth1") == "" {
			return fmt.Errorf("no route from the RA yet")
		}
		return nil
	})
	s.gw.MustRun(t, "ip", "-6", "route", "flush", "dev", "eth1", "proto", "ra")

	p := seedPolicy()
	p.Upstream = &Uplink{Interface: "wan0", Addr: addr(wanGW), AcceptRA: true}
	if err := s.fw.Set(Build(p)); err != nil {
		t.Fatal(err)
	}
	isp.SendRA(t, "eth0", netip.Prefix{})
	lab.Eventually(t, 5*time.Second, func() error {
		if raRoute("wan0") == "" {
			return fmt.Errorf("the ISP's RA on the WAN port was not taken")
		}
		return nil
	})
	link, closed := s.fw.mustCount(t, LinkCounter), s.fw.mustCount(t, ClosedCounter("drop"))
	for range 3 {
		s.lan.SendRA(t, "eth0", netip.Prefix{})
	}
	// Once the firewall has dropped them (IPv6 on the alias NIC is
	// closed), they cannot reach the kernel's neighbour discovery.
	lab.Eventually(t, 5*time.Second, func() error {
		if n := s.fw.mustCount(t, ClosedCounter("drop")); n < closed+3 {
			return fmt.Errorf("closed drops %d, want at least %d", n, closed+3)
		}
		return nil
	})
	if r := raRoute("eth1"); r != "" {
		t.Errorf("an RA from lan gave the box a route: %s", r)
	}
	if n := s.fw.mustCount(t, LinkCounter); n != link {
		t.Errorf("lan's RAs were accepted as link traffic (%d → %d)", link, n)
	}
}

// mustCount reads one named counter's packets.
func (f *Firewall) mustCount(t *testing.T, name string) uint64 {
	t.Helper()
	objs, err := f.sock.readObjects()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.name == name {
			return o.packets
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
