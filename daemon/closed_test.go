package daemon_test

import (
	"slices"
	"strings"
	"testing"

	"gatewayd/lab"
)

// vpnZone names the wg-like interface in a zone of its own that may reach
// ssh and ping on the box and be routed to the lan.
const vpnZone = `
[zone.vpn]
interfaces = ["wg0"]
allow = ["ssh", "ping"]
forward = ["lan"]
`

// Hosts behind the box's other interfaces: an office behind a second NIC
// (eth2) and a VPN peer behind a wg-like interface (a veth named wg0).
const (
	officeBox  = "10.20.0.1"
	officeHost = "10.20.0.10"
	vpnBox     = "10.30.0.1"
	vpnPeer    = "10.30.0.10"
)

// plugBehind links a new namespace name to the gateway's ifname, the box
// holding boxAddr and the host hostAddr (/24) with its default route via
// the box.
func (s *wanSite) plugBehind(t *testing.T, ifname, name, boxAddr, hostAddr string) *lab.Namespace {
	t.Helper()
	ns := namespace(t, s.g.lab, name)
	for _, err := range []error{
		s.g.lab.Link(s.g.ns, ifname, ns, "eth0"),
		s.g.ns.Addr(ifname, boxAddr+"/24"),
		ns.Addr("eth0", hostAddr+"/24"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ns.MustRun(t, "ip", "route", "add", "default", "via", boxAddr)
	return ns
}

// TestClosedInterfaces: a second NIC and a wg-like interface on the box.
// Before any zone names them, plan (before the first start) and status
// list them closed, and everything from them is dropped, at input (every
// address of the box) and at forward (the lan, the internet). A reload
// that names wg0 in a zone opens exactly what that zone allows; eth2 stays
// closed.
func TestClosedInterfaces(t *testing.T) {
	s := newWANSite(t)
	office := s.plugBehind(t, "eth2", "office", officeBox, officeHost)
	vpn := s.plugBehind(t, "wg0", "vpn", vpnBox, vpnPeer)
	s.write(staticUpstream, "")
	s.ispRoutesInside(t, wanStatic)

	out, err := s.g.cli("plan")
	if err != nil {
		t.Fatalf("plan before the first start: %v\n%s", err, out)
	}
	for _, l := range []string{"eth2", "wg0"} {
		if !strings.Contains(out, "# interface "+l+" is closed: no zone names it") {
			t.Errorf("plan before the first start does not say it closes %s:\n%s", l, out)
		}
	}
	for _, l := range []string{"eth0", "eth1"} {
		if strings.Contains(out, "# interface "+l+" is closed") {
			t.Errorf("plan closes %s, which the file names:\n%s", l, out)
		}
	}

	s.g.start()
	if st := s.g.status(); !slices.Equal(st.Closed, []string{"eth2", "wg0"}) {
		t.Errorf("status: closed interfaces %v, want [eth2 wg0]", st.Closed)
	}
	ssh := serveTCP(t, s.g.ns, "0.0.0.0:22")
	atClient := serveTCP(t, s.client, "0.0.0.0:8080")
	atNet := serveTCP(t, s.isp, internet+":80")
	leased := s.lease(t)

	from := func(ns *lab.Namespace, who, boxAddr string, open bool) []check {
		return []check{
			{who + " → ssh on its own link's address of the box", tcpTo(ns, boxAddr+":22"), false},
			{who + " → ping its own link's address of the box", pingTo(ns, boxAddr), false},
			{who + " → ssh on the primary address", tcpTo(ns, primary+":22"), false},
			{who + " → ssh on the router alias", tcpTo(ns, "192.0.2.1:22"), open},
			{who + " → ping the router alias", pingTo(ns, "192.0.2.1"), open},
			{who + " → DNS on the dns alias", digTo(ns, "192.0.2.3", "nas.home.arpa"), false},
			{who + " → tcp to the lan client (forward)", tcpTo(ns, leased+":8080"), open},
			{who + " → ping the lan client (forward)", pingTo(ns, leased), open},
			{who + " → the internet (forward)", tcpTo(ns, internet+":80"), false},
		}
	}
	lanControl := []check{
		{"client → ssh on the primary address (management)", tcpTo(s.client, primary+":22"), true},
		{"client → ping the router alias", pingTo(s.client, "192.0.2.1"), true},
		{"client → the internet", tcpTo(s.client, internet+":80"), true},
	}
	expect(t, slices.Concat(lanControl, from(office, "office (eth2)", officeBox, false), from(vpn, "vpn (wg0)", vpnBox, false))...)
	st := s.g.status()
	if c := st.Roles.Firewall.Closed; c.Drop.Packets == 0 {
		t.Errorf("status: the drops on closed interfaces are not counted: %+v", c)
	}

	s.write(staticUpstream, vpnZone)
	if out, err := s.g.cli("reload"); err != nil {
		t.Fatalf("reload naming wg0: %v\n%s", err, out)
	}
	if st := s.g.status(); !slices.Equal(st.Closed, []string{"eth2"}) {
		t.Errorf("status after naming wg0: closed interfaces %v, want [eth2]", st.Closed)
	}
	expect(t, slices.Concat(lanControl, from(office, "office (eth2)", officeBox, false), from(vpn, "vpn (wg0)", vpnBox, true))...)
	for what, l := range map[string]*listener{"ssh on the box": ssh, "the lan client": atClient, "the internet": atNet} {
		if l.saw(officeHost) {
			t.Errorf("%s was reached from behind the closed eth2: %v", what, l.peers())
		}
	}
	if !atClient.saw(vpnPeer) || atNet.saw(vpnPeer) {
		t.Errorf("the vpn peer reached the lan client: %v, the internet: %v; want only the lan", atClient.saw(vpnPeer), atNet.saw(vpnPeer))
	}
}

// TestManagementAccess: an SSH-like service on the box's primary address
// stays reachable from the management zone (lan, the zone of the primary
// address) though lan allows no ssh: before the first start, after it,
// after a reload that takes more away from lan, while the daemon is
// stopped and after the restart; a session opened before the first start
// lives through all of it. From a zone that is not a management zone
// (guest) and from the ISP it is closed throughout, and lan reaches no ssh
// on the aliases, which follow the zones' allow lists.
func TestManagementAccess(t *testing.T) {
	s := newWANSite(t)
	s.client.MustRun(t, "ip", "addr", "add", "192.0.2.50/24", "dev", "eth0")
	s.client.MustRun(t, "ip", "route", "add", "default", "via", "192.0.2.1")
	s.write(staticUpstream, "")
	s.ispRoutesInside(t, wanStatic)
	ssh := serveTCP(t, s.g.ns, "0.0.0.0:22")

	expect(t, check{"before the first start: client → ssh on the primary address", tcpTo(s.client, primary+":22"), true})
	admin := openSession(t, s.client, primary+":22")
	stage := func(when string, lanPingsAliases bool) {
		t.Helper()
		expect(t,
			check{when + ": client → ssh on the primary address", tcpTo(s.client, primary+":22"), true},
			check{when + ": client → ping the primary address", pingTo(s.client, primary), true},
			check{when + ": client → ping the router alias", pingTo(s.client, "192.0.2.1"), lanPingsAliases},
			check{when + ": client → ssh on the router alias", tcpTo(s.client, "192.0.2.1:22"), false},
			check{when + ": guest → ssh on the primary address", tcpTo(s.guest, primary+":22"), false},
			check{when + ": guest → ping the primary address", pingTo(s.guest, primary), false},
			check{when + ": isp → ssh on the primary address", tcpTo(s.isp, primary+":22"), false},
			check{when + ": isp → ssh on the WAN address", tcpTo(s.isp, wanStatic+":22"), false},
		)
		if err := admin.alive(); err != nil {
			t.Errorf("%s: the admin's session opened before the first start is cut: %v", when, err)
		}
	}

	s.g.start()
	stage("after the first start", true)

	text := mustRead(s.g.conf)
	s.g.write(strings.Replace(text, `allow = ["dhcp", "dns", "ping"]`, `allow = ["dhcp", "dns"]`, 1))
	out, err := s.g.cli("reload")
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	// ping is a management service: its loss on the aliases is said; on the
	// primary address it stays.
	if !strings.Contains(out, "zone lan (192.0.2.0/24) loses ping (icmp)") || strings.Contains(out, "to the box's own addresses") {
		t.Errorf("reload taking ping from lan does not warn about the aliases alone:\n%s", out)
	}
	stage("after a reload that takes ping from lan", false)

	s.g.stop()
	stage("while the daemon is stopped", false)
	s.g.start()
	stage("after the restart", false)

	for _, who := range []string{guestHost, ispRouter, internet} {
		if ssh.saw(who) {
			t.Errorf("the SSH-like service was reached from %s: %v", who, ssh.peers())
		}
	}
}
