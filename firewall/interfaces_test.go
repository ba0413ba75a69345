package firewall

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"gatewayd/lab"
)

// Besides the site's wire, the gateway has a second NIC (eth2, to host mgmt)
// and wg0, a veth standing in for a WireGuard tunnel (to host vpn).
const (
	mgmtGW     = "172.20.0.1"
	mgmtClient = "172.20.0.10"
	vpnGW      = "10.99.0.1"
	vpnClient  = "10.99.0.10"
)

// moreInterfaces links mgmt on eth2 and vpn on wg0 to the site's gateway.
func moreInterfaces(t *testing.T, s *site) (mgmt, vpn *lab.Namespace) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mgmt, err := s.l.Namespace("mgmt")
	must(err)
	vpn, err = s.l.Namespace("vpn")
	must(err)
	must(s.l.Link(s.gw, "eth2", mgmt, "eth0"))
	must(s.l.Link(s.gw, "wg0", vpn, "eth0"))
	must(s.gw.Addr("eth2", mgmtGW+"/24"))
	must(s.gw.Addr("wg0", vpnGW+"/24"))
	must(mgmt.Addr("eth0", mgmtClient+"/24"))
	must(vpn.Addr("eth0", vpnClient+"/24"))
	mgmt.MustRun(t, "ip", "route", "add", "default", "via", mgmtGW)
	vpn.MustRun(t, "ip", "route", "add", "default", "via", vpnGW)
	return mgmt, vpn
}

// session is an open TCP connection to an echo server.
type session struct{ c net.Conn }

// serveEcho echoes every connection on addr inside ns until the test ends.
func serveEcho(t *testing.T, ns *lab.Namespace, addr string) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

func openSession(t *testing.T, ns *lab.Namespace, addr string) *session {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("opening a session from %s to %s: %v", ns.Name, addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s := &session{c}
	if err := s.echo(); err != nil {
		t.Fatal(err)
	}
	return s
}

// openSessionFrom opens a session from the local address laddr.
func openSessionFrom(t *testing.T, ns *lab.Namespace, laddr, addr string) *session {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		dl := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(laddr)}}
		c, err = dl.Dial("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("opening a session from %s in %s to %s: %v", laddr, ns.Name, addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s := &session{c}
	if err := s.echo(); err != nil {
		t.Fatal(err)
	}
	return s
}

// expectSessionsCut fails for each session that still echoes; they are
// tried at once, each waiting out its deadline.
func expectSessionsCut(t *testing.T, sessions map[string]*session) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var alive []string
	for what, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.echo() == nil {
				mu.Lock()
				alive = append(alive, what)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(alive)
	for _, what := range alive {
		t.Errorf("%s: the session survived, but nothing lets its port in", what)
	}
}

// echo sends a line and waits for it to come back.
func (s *session) echo() error {
	_ = s.c.SetDeadline(time.Now().Add(2 * time.Second))
	msg := []byte(fmt.Sprintf("%d\n", time.Now().UnixNano()))
	if _, err := s.c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(s.c, got); err != nil {
		return fmt.Errorf("the session's echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("the session echoed %q, want %q", got, msg)
	}
	return nil
}

// TestClosedInterfaces: nothing is accepted because of the interface it came
// in on. Input and forward from interfaces no zone names (a second NIC, a
// tunnel) are dropped and counted as closed, and no zone is routed out of
// them. A session opened before the first start to a service its zone may
// reach survives it; one from a closed NIC, from the upstream, or to a port
// its zone may not reach does not (conntrack would otherwise take up any
// ACK, and answer ACK scans with resets). A zone naming the tunnel gives its
// traffic that zone's rights (and IPv6 ping); the other NIC stays closed.
func TestClosedInterfaces(t *testing.T) {
	s := newSite(t)
	mgmt, vpn := moreInterfaces(t, s)
	serveTCP(t, s.gw, "0.0.0.0:22")
	serveEcho(t, s.gw, "0.0.0.0:2222")
	for _, ns := range []*lab.Namespace{s.lan, mgmt, vpn} {
		serveTCP(t, ns, "0.0.0.0:8080")
	}
	atLan := serveTCP(t, s.lan, "0.0.0.0:8081")
	admin := openSession(t, s.lan, "192.168.1.1:2222")
	cut := map[string]*session{
		"mgmt (closed eth2) → its NIC's address":        openSession(t, mgmt, mgmtGW+":2222"),
		"the upstream → the router alias":               openSessionFrom(t, s.up, outside, "192.168.1.1:2222"),
		"lab → the lab alias, a port lab may not reach": openSession(t, s.lab, "10.0.0.1:2222"),
	}

	first := seedPolicy()
	lan := seedZone(&first, "lan")
	lan.Access = append(lan.Access, serve("echo", false, []netip.Addr{seedRouter}, tcpPort(2222, 2222))...)
	if err := s.fw.Set(Build(first)); err != nil {
		t.Fatal(err)
	}
	if err := admin.echo(); err != nil {
		t.Errorf("the admin's session to a service lan may reach did not survive the first start: %v", err)
	}
	expectSessionsCut(t, cut)
	for _, c := range []struct {
		what string
		dial func(time.Duration) error
	}{
		{"mgmt (eth2) → router ssh", tcp(mgmt, "192.168.1.1:22")},
		{"mgmt (eth2) → its own NIC's address ssh", tcp(mgmt, mgmtGW+":22")},
		{"mgmt (eth2) → ping router", ping(mgmt, "192.168.1.1")},
		{"mgmt (eth2) → lan client", tcp(mgmt, lanClient+":8080")},
		{"vpn (wg0) → router ssh", tcp(vpn, "192.168.1.1:22")},
		{"vpn (wg0) → lan client", tcp(vpn, lanClient+":8080")},
		{"lan → mgmt host (a closed NIC is not the upstream)", tcp(s.lan, mgmtClient+":8080")},
		{"lan → vpn host", tcp(s.lan, vpnClient+":8080")},
	} {
		expectDropped(t, c.what, c.dial)
	}
	c, err := s.fw.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Closed.Drop.Packets == 0 {
		t.Errorf("closed interfaces: drops should be counted: %+v", c.Closed)
	}

	// Zone vpn names wg0: ssh and ping on the router alias, routed to lan
	// and lan to it.
	p := seedPolicy()
	seedZone(&p, "lan").Forward = append(seedZone(&p, "lan").Forward, "vpn")
	p.Zones = append(p.Zones, ZoneInfo{Name: "vpn", Interfaces: []string{"wg0"}, Forward: []string{"lan"},
		Access: slices.Concat(seedSSHAccess(), serve("ping", true, addrsOf(seedAliases()), icmp))})
	if err := s.fw.Set(Build(p)); err != nil {
		t.Fatal(err)
	}
	expectReach(t, "vpn (wg0) → router ssh", tcp(vpn, "192.168.1.1:22"))
	expectReach(t, "vpn (wg0) → lan client", tcp(vpn, lanClient+":8081"))
	if got := atLan.list(); !slices.Contains(got, vpnClient) {
		t.Errorf("lan saw %v, want the vpn client's own address (no NAT between zones)", got)
	}
	expectReach(t, "lan → vpn host", tcp(s.lan, vpnClient+":8080"))
	gw6 := s.gw.LinkLocal(t, "wg0")
	expectReach(t, "vpn → ping the gateway over IPv6 (ping follows the zone's service)", ping(vpn, gw6.WithZone("eth0").String()))
	expectDropped(t, "vpn (wg0) → dns (not allowed)", tcp(vpn, "192.168.1.3:53"))
	expectDropped(t, "mgmt (eth2) still → router ssh", tcp(mgmt, "192.168.1.1:22"))
	c, err = s.fw.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if z := zoneCount(c, "vpn"); z.In.Packets == 0 || z.Forward.Packets == 0 {
		t.Errorf("zone vpn counters did not grow: %+v", z)
	}
	if z := zoneCount(c, "lan"); z.Return.Packets == 0 {
		t.Errorf("lan's replies to vpn's connections were not counted as returned: %+v", z)
	}
}

// TestInterfacePrecedence: a zone naming an interface takes the traffic on it
// whatever its source subnet: naming the alias NIC puts everything on it in
// that zone.
func TestInterfacePrecedence(t *testing.T) {
	p := seedPolicy()
	p.Zones = append(p.Zones, ZoneInfo{Name: "wire", Interfaces: []string{"eth1"}})
	r := Build(p)
	lines := splitLines(trimLines(chainText(r, "input")))
	at := func(line string) int {
		i := slices.Index(lines, line)
		if i < 0 {
			t.Fatalf("input lacks %q:\n%s", line, chainText(r, "input"))
		}
		return i
	}
	if at(`iifname "eth1" jump in_wire`) > at(`iifname "eth1" ip saddr vmap @zone_in`) {
		t.Errorf("the interface match comes after the subnet match:\n%s", chainText(r, "input"))
	}
	if n := claimant(r, source{subnet: netip.MustParsePrefix("192.168.1.0/24")}); n == nil || n.Name != "wire" {
		t.Errorf("Diff's view of who claims lan's subnet: %+v, want zone wire", n)
	}
}
