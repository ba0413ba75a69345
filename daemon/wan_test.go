package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatewayd/daemon"
	"gatewayd/firewall"
	"gatewayd/lab"
	"gatewayd/roles/router"
)

// wanSiteFile is a box with a WAN port: the aliases on eth1 (lan
// 192.0.2.0/24 and a guest subnet on the same wire), eth0 towards the ISP.
// %[1]s is the daemon's directory, %[2]s the [upstream] section, %[3]s
// anything appended (zones, services).
const wanSiteFile = `
[gateway]
interface = "eth1"
host = "gw1"
state_dir = "%[1]s/state"
control_socket = "%[1]s/run/control.sock"
probe_timeout = "100ms"
announce_count = 1
log_level = "debug"

[[alias]]
name = "router"
address = "192.0.2.1/24"

[[alias]]
name = "dhcp"
address = "192.0.2.2/24"

[[alias]]
name = "dns"
address = "192.0.2.3/24"

[[alias]]
name = "guest"
address = "198.18.7.1/24"

%[2]s

[router]
alias = "router"
masquerade = true

[dhcp]
alias = "dhcp"
lease_time = "1h"

[[dhcp.pool]]
range = "192.0.2.100-192.0.2.199"
router = "router"
dns = ["dns"]

[dns]
alias = "dns"

[[dns.host]]
name = "nas"
address = "192.0.2.20"

[zone.lan]
subnets = ["192.0.2.0/24"]
allow = ["dhcp", "dns", "ping"]
forward = ["upstream"]

[zone.guest]
subnets = ["198.18.7.0/24"]
allow = ["ping"]
%[3]s`

// The WAN side: the ISP's router on the WAN link, and a host on the
// internet behind it.
const (
	ispRouter = "203.0.113.1"
	wanStatic = "203.0.113.2"
	internet  = "198.51.100.80"
	primary   = "192.0.2.250"
	guestHost = "198.18.7.50"
)

const staticUpstream = `[upstream]
interface = "eth0"
address = "203.0.113.2/24"
gateway = "203.0.113.1"`

const dhcpUpstream = `[upstream]
interface = "eth0"
dhcp = true`

// wanSite is the lab of wanSiteFile: the gateway (eth1 on the lan switch
// with its primary address, eth0 linked to the isp namespace), a client on
// the lan that takes a lease from the daemon, and a guest host on the guest
// subnet of the same wire.
type wanSite struct {
	g      *gateway
	isp    *lab.Namespace
	client *lab.Namespace
	guest  *lab.Namespace
	events string // the client's DHCP hook log
	hook   string
}

func newWANSite(t *testing.T) *wanSite {
	t.Helper()
	lab.Require(t)
	lab.RequireTools(t, "udhcpc", "dig")
	l := lab.New(t)
	sw, err := l.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	s := &wanSite{g: plugGateway(t, l, sw, "gw", primary+"/24"), isp: namespace(t, l, "isp"),
		client: namespace(t, l, "client"), guest: namespace(t, l, "guest")}
	for _, err := range []error{
		l.Link(s.g.ns, "eth0", s.isp, "eth0"),
		s.isp.Addr("eth0", ispRouter+"/24"),
		s.isp.Addr("lo", internet+"/32"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []*lab.Namespace{s.client, s.guest} {
		if _, err := l.Plug(sw, ns, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	s.guest.MustRun(t, "ip", "addr", "add", guestHost+"/24", "dev", "eth0")
	s.guest.MustRun(t, "ip", "route", "add", "default", "via", "198.18.7.1")
	dir := t.TempDir()
	s.events = filepath.Join(dir, "events")
	s.hook = filepath.Join(dir, "hook.sh")
	hook := `#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	;;
esac
echo "$1 $ip $serverid" >> ` + s.events + "\n"
	if err := os.WriteFile(s.hook, []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// namespace makes namespace name in l or fails the test.
func namespace(t testing.TB, l *lab.Lab, name string) *lab.Namespace {
	t.Helper()
	ns, err := l.Namespace(name)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// write puts the site file with this [upstream] section and extra text.
func (s *wanSite) write(upstream, extra string) {
	s.g.write(fmt.Sprintf(wanSiteFile, s.g.dir, upstream, extra))
}

// lease runs udhcpc on the client until it is bound, and returns the
// address the daemon leased.
func (s *wanSite) lease(t *testing.T) string {
	t.Helper()
	cmd, err := s.client.Start(context.Background(), "udhcpc", "-f", "-i", "eth0", "-s", s.hook, "-t", "5", "-T", "1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var leased string
	lab.Eventually(t, 15*time.Second, func() error {
		b, _ := os.ReadFile(s.events)
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "bound" {
				leased = f[1]
				return nil
			}
		}
		return errors.New("no lease yet")
	})
	return leased
}

// ispRoutesInside makes the ISP route the site's subnets to the WAN
// address, as a hostile ISP trying to reach inside would.
func (s *wanSite) ispRoutesInside(t *testing.T, wan string) {
	t.Helper()
	for _, sn := range []string{"192.0.2.0/24", "198.18.7.0/24"} {
		s.isp.MustRun(t, "ip", "route", "replace", sn, "via", wan)
	}
}

// dnsmasqDHCP runs dnsmasq as the ISP's DHCP server on its end of the WAN
// link (no DNS).
func (s *wanSite) dnsmasqDHCP(t *testing.T) {
	t.Helper()
	lab.RequireTools(t, "dnsmasq")
	leases := filepath.Join(t.TempDir(), "isp.leases")
	if _, err := s.isp.Start(context.Background(), "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
		"--conf-file=/dev/null", "--pid-file=", "--user=root", "--port=0",
		"--dhcp-range=203.0.113.100,203.0.113.150,255.255.255.0,1h", "--interface=eth0", "--bind-interfaces",
		"--dhcp-leasefile="+leases); err != nil {
		t.Fatal(err)
	}
}

// statusJSON is the part of `gatewayd status --json` these tests read.
type statusJSON struct {
	Generation int                               `json:"generation"`
	Degraded   string                            `json:"degraded"`
	Closed     []string                          `json:"closed_interfaces"`
	Confirm    *time.Time                        `json:"confirm_by"`
	Repairs    map[string]struct{ Restores int } `json:"repairs"`
	NIC        *daemon.NICStatus                 `json:"nic"`
	Roles      struct {
		Router   router.Status     `json:"router"`
		Firewall firewall.Counters `json:"firewall"`
	} `json:"roles"`
}

func (g *gateway) status() statusJSON {
	g.t.Helper()
	out, err := g.cli("status", "--json")
	if err != nil {
		g.t.Fatalf("status: %v\n%s", err, out)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.t.Fatalf("status: %v\n%s", err, out)
	}
	return st
}

// zone is one zone's counters from status ("upstream" included).
func (st statusJSON) zone(name string) firewall.ZoneCounters {
	for _, z := range st.Roles.Firewall.Zones {
		if z.Zone == name {
			return z
		}
	}
	return firewall.ZoneCounters{}
}

// wanAddress waits until the router role holds the WAN address and returns
// it with the status that showed it.
func (g *gateway) wanAddress(within time.Duration) (string, statusJSON) {
	g.t.Helper()
	var st statusJSON
	lab.Eventually(g.t, within, func() error {
		st = g.status()
		if u := st.Roles.Router.Uplink; u != nil && u.Address.IsValid() && u.Owned {
			return nil
		}
		return fmt.Errorf("the uplink has no address of its own yet: %+v", st.Roles.Router.Uplink)
	})
	return st.Roles.Router.Uplink.Address.Addr().String(), st
}

// digTo asks server for name from ns with dig: nil when it answered.
func digTo(ns *lab.Namespace, server, name string) probe {
	return func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d+3*time.Second)
		defer cancel()
		secs := max(1, int(d/time.Second))
		out, err := ns.Run(ctx, "dig", "@"+server, "+short", fmt.Sprintf("+time=%d", secs), "+tries=1", name)
		switch {
		case err != nil && (strings.Contains(out, "timed out") || ctx.Err() != nil):
			return fmt.Errorf("%w: dig @%s %s: %s", os.ErrDeadlineExceeded, server, name, strings.TrimSpace(out))
		case err != nil:
			return err
		case strings.TrimSpace(out) == "":
			return fmt.Errorf("dig @%s %s: no answer", server, name)
		}
		return nil
	}
}

// TestWANPort: a box with a WAN port, static or by DHCP from the ISP's
// dnsmasq. A lan client with a lease from the daemon reaches a host on the
// internet, which sees the WAN address as the source; the ISP side reaches
// nothing inside: no lan client, no port of the box on any of its
// addresses, no DNS.
func TestWANPort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		upstream string
	}{{"static", staticUpstream}, {"dhcp", dhcpUpstream}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newWANSite(t)
			if tc.upstream == dhcpUpstream {
				s.dnsmasqDHCP(t)
			}
			s.write(tc.upstream, "")
			s.g.start()
			wan, st := s.g.wanAddress(20 * time.Second)
			checkUplink(t, s.g, tc.upstream == dhcpUpstream, wan, st)
			s.ispRoutesInside(t, wan)
			checkWAN(t, s, wan)
		})
	}
}

// checkUplink checks the WAN address and the default route the router role
// took: the static ones, or a lease from dnsmasq's range.
func checkUplink(t *testing.T, g *gateway, dhcp bool, wan string, st statusJSON) {
	t.Helper()
	u := st.Roles.Router.Uplink
	switch {
	case u.Interface != "eth0" || u.Gateway.String() != ispRouter:
		t.Errorf("uplink %+v, want eth0 via %s", u, ispRouter)
	case !dhcp && (wan != wanStatic || u.DHCP != nil):
		t.Errorf("static uplink: %+v, want %s without DHCP", u, wanStatic)
	case dhcp && (u.DHCP == nil || u.DHCP.State != "bound" || u.DHCP.Server.String() != ispRouter):
		t.Errorf("DHCP uplink: %+v (lease %+v), want a lease bound from %s", u, u.DHCP, ispRouter)
	case dhcp && (u.Address.Addr().Less(netip.MustParseAddr("203.0.113.100")) || netip.MustParseAddr("203.0.113.150").Less(u.Address.Addr())):
		t.Errorf("DHCP uplink address %s is outside dnsmasq's range", u.Address)
	}
	if out := g.ns.MustRun(t, "ip", "-4", "route", "show", "default"); !strings.Contains(out, "via "+ispRouter+" dev eth0") {
		t.Errorf("default route: %q, want via %s dev eth0", out, ispRouter)
	}
	if out := g.ns.MustRun(t, "ip", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(out, "inet "+wan+"/24") {
		t.Errorf("eth0 lacks the WAN address %s:\n%s", wan, out)
	}
}

// checkWAN sends the real packets: what the lan may do through the WAN
// port, and what the ISP side must not reach.
func checkWAN(t *testing.T, s *wanSite, wan string) {
	t.Helper()
	atNet := serveTCP(t, s.isp, internet+":80")
	atNetUDP := serveUDP(t, s.isp, internet+":5353")
	ssh := serveTCP(t, s.g.ns, "0.0.0.0:22")
	dnsTCP := serveTCP(t, s.g.ns, wan+":53")
	dnsUDP := serveUDP(t, s.g.ns, wan+":53")
	atClient := serveTCP(t, s.client, "0.0.0.0:8080")
	leased := s.lease(t)

	expect(t,
		check{"client → a host on the internet, tcp", tcpTo(s.client, internet+":80"), true},
		check{"client → a host on the internet, udp", udpTo(s.client, internet+":5353"), true},
		check{"client → ping a host on the internet", pingTo(s.client, internet), true},
		check{"client → DNS on the dns alias", digTo(s.client, "192.0.2.3", "nas.home.arpa"), true},
		check{"client → ssh on the primary address (management)", tcpTo(s.client, primary+":22"), true},
		check{"the box itself → its tcp/53 on the WAN address", tcpTo(s.g.ns, wan+":53"), true},
		check{"the box itself → its udp/53 on the WAN address", udpTo(s.g.ns, wan+":53"), true},

		check{"isp → ping the lan client", pingTo(s.isp, leased), false},
		check{"isp → tcp to the lan client", tcpTo(s.isp, leased+":8080"), false},
		check{"isp → ping the WAN address", pingTo(s.isp, wan), false},
		check{"isp → ssh on the WAN address", tcpTo(s.isp, wan+":22"), false},
		check{"isp → tcp/53 on the WAN address", tcpTo(s.isp, wan+":53"), false},
		check{"isp → udp/53 on the WAN address", udpTo(s.isp, wan+":53"), false},
		check{"isp → ssh on the primary address", tcpTo(s.isp, primary+":22"), false},
		check{"isp → ssh on the router alias", tcpTo(s.isp, "192.0.2.1:22"), false},
		check{"isp → DNS on the dns alias", digTo(s.isp, "192.0.2.3", "nas.home.arpa"), false},
		check{"isp → ping the guest host", pingTo(s.isp, guestHost), false},
	)
	for what, l := range map[string]*listener{"tcp": atNet, "udp": atNetUDP} {
		if got := l.peers(); len(got) == 0 || strings.Count(strings.Join(got, " "), wan) != len(got) {
			t.Errorf("the internet host saw %s sources %v, want only the WAN address %s", what, got, wan)
		}
	}
	for what, l := range map[string]*listener{"ssh on the box": ssh, "tcp/53 on the box": dnsTCP, "udp/53 on the box": dnsUDP, "the lan client": atClient} {
		if l.saw(ispRouter) || l.saw(internet) {
			t.Errorf("%s was reached from the ISP side: %v", what, l.peers())
		}
	}
	st := s.g.status()
	if up := st.zone("upstream"); up.Drop.Packets == 0 || up.Return.Packets == 0 {
		t.Errorf("status: the upstream zone should count the ISP's drops and the internet's replies: %+v", up)
	}
	if lan := st.zone("lan"); lan.Forward.Packets == 0 {
		t.Errorf("status: lan's traffic to the internet is not counted as forwarded: %+v", lan)
	}
}
