package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The checks of the WAN port, zone interfaces, management access and
// metrics, each reported once at the key it is about.

// withUpstream is an edit that moves the default route to a WAN port: it
// removes [router] upstream (line 23, so later lines move up one) and
// appends [upstream] (line 54) with body after it (from line 55).
func withUpstream(body string) []string {
	return []string{`upstream = "192.168.1.254"` + "\n", "", "", "\n[upstream]\n" + body}
}

var upstreamCases = []errCase{
	{name: "missing interface", edits: withUpstream("dhcp = true\n"),
		at: "54:1", key: "upstream", msg: []string{`interface is missing: set interface = "eth0" (the NIC towards the ISP)`}},
	{name: "interface is the alias NIC", edits: withUpstream("interface = \"eth1\"\ndhcp = true\n"),
		at: "55:1", key: "upstream.interface", msg: []string{"eth1 is [gateway] interface, the NIC that carries the aliases; the WAN port is a NIC of its own"}},
	{name: "interface name", edits: withUpstream("interface = \"eth 0\"\ndhcp = true\n"),
		at: "55:1", key: "upstream.interface", msg: []string{`"eth 0" is not an interface name`}},
	{name: "both forms", edits: withUpstream("interface = \"eth0\"\ndhcp = true\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\n"),
		at: "56:1", key: "upstream.dhcp", msg: []string{"write either dhcp = true or address and gateway, not both"}},
	{name: "neither form", edits: withUpstream("interface = \"eth0\"\n"),
		at: "54:1", key: "upstream", msg: []string{`address is missing: set address = "203.0.113.2/24" and gateway = "203.0.113.1", or dhcp = true`}},
	{name: "network address", edits: withUpstream("interface = \"eth0\"\naddress = \"203.0.113.0/24\"\ngateway = \"203.0.113.1\"\n"),
		at: "56:1", key: "upstream.address", msg: []string{"203.0.113.0 is the network or broadcast address of 203.0.113.0/24; pick a host address"}},
	{name: "loopback address", edits: withUpstream("interface = \"eth0\"\naddress = \"127.0.0.2/8\"\ngateway = \"127.0.0.1\"\n"),
		at: "56:1", key: "upstream.address", msg: []string{"127.0.0.2 is a loopback address (127.0.0.0/8), which never leaves the box; the WAN port needs the unicast address the ISP gave"}},
	{name: "IPv6 address", edits: withUpstream("interface = \"eth0\"\naddress = \"2001:db8::2/64\"\ngateway = \"2001:db8::1\"\n"),
		at: "56:1", key: "upstream.address", msg: []string{"2001:db8::2/64 is not IPv4; the upstream address is an IPv4 address with a prefix length"}},
	{name: "missing gateway", edits: withUpstream("interface = \"eth0\"\naddress = \"203.0.113.2/24\"\n"),
		at: "54:1", key: "upstream", msg: []string{`gateway is missing: set gateway = "<the ISP's router on 203.0.113.0/24>"`}},
	{name: "gateway off the subnet", edits: withUpstream("interface = \"eth0\"\naddress = \"203.0.113.2/24\"\ngateway = \"198.51.100.1\"\n"),
		at: "57:1", key: "upstream.gateway", msg: []string{"gateway 198.51.100.1 is not on the upstream subnet 203.0.113.0/24; the ISP's router must be directly reachable on eth0"}},
	{name: "gateway is the address", edits: withUpstream("interface = \"eth0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.2\"\n"),
		at: "57:1", key: "upstream.gateway", msg: []string{"gateway 203.0.113.2 is the upstream address itself"}},
	{name: "gateway is the broadcast address", edits: withUpstream("interface = \"eth0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.255\"\n"),
		at: "57:1", key: "upstream.gateway", msg: []string{"gateway 203.0.113.255 is the network or broadcast address of 203.0.113.0/24"}},
	// On the alias wire's subnet the WAN port overlaps an alias and a zone.
	{name: "subnet of the aliases", edits: withUpstream("interface = \"eth0\"\naddress = \"192.168.1.200/24\"\ngateway = \"192.168.1.254\"\n"), count: 2,
		at: "56:1", key: "upstream.address", msg: []string{`subnet 192.168.1.0/24 overlaps 192.168.1.0/24 of alias "router" (line 7); the WAN port's subnet is outside the site`}},
	{name: "subnet of a zone", edits: append(withUpstream("interface = \"eth0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\n"), labSubnets, `subnets = ["10.0.0.0/24", "203.0.113.0/25"]`),
		at: "56:1", key: "upstream.address", msg: []string{`subnet 203.0.113.0/24 overlaps 203.0.113.0/25 of zone "lab" (line 50); the WAN port is the upstream zone, outside every zone`}},
	{name: "router upstream as well", edits: []string{"", "\n[upstream]\ninterface = \"eth0\"\ndhcp = true\n"},
		at: "23:1", key: "router.upstream", msg: []string{"upstream cannot be set with [upstream]: the WAN port gives the default route (from DHCP on eth0), and the box takes it from one source; remove this line"}},
	{name: "router upstream as well, static", edits: []string{"", "\n[upstream]\ninterface = \"eth0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\n"},
		at: "23:1", key: "router.upstream", msg: []string{"the WAN port gives the default route (via 203.0.113.1 on eth0)"}},
}

func TestUpstreamChecks(t *testing.T) { runErrCases(t, upstreamCases) }

var zoneInterfaceCases = []errCase{
	{name: "not an interface name", edits: []string{labSubnets, labSubnets + "\ninterfaces = [\"wg0\", \"wg0:1\"]"},
		at: "52:22", key: "zone.lab.interfaces[1]", msg: []string{`"wg0:1" is not an interface name (at most 15 bytes, no '/', ':' or spaces)`}},
	{name: "the alias NIC", edits: []string{labSubnets, labSubnets + "\ninterfaces = [\"eth1\"]"},
		at: "52:15", key: "zone.lab.interfaces[0]", msg: []string{"eth1 is [gateway] interface, the NIC that carries the aliases: its traffic is split into zones by subnet; list the subnets instead"}},
	{name: "the WAN port", edits: append(withUpstream("interface = \"eth0\"\ndhcp = true\n"), labSubnets, labSubnets+"\ninterfaces = [\"eth0\"]"),
		at: "51:15", key: "zone.lab.interfaces[0]", msg: []string{`eth0 is the [upstream] interface: it is the upstream zone (forward = ["upstream"] reaches it), not part of a zone`}},
	{name: "loopback", edits: []string{labSubnets, labSubnets + "\ninterfaces = [\"lo\"]"},
		at: "52:15", key: "zone.lab.interfaces[0]", msg: []string{"lo is the loopback interface, which the firewall always accepts"}},
	// Reported where it is written later: lab sorts first, lan is first in the file.
	{name: "in two zones", edits: []string{`subnets = ["192.168.1.0/24"]`, "subnets = [\"192.168.1.0/24\"]\ninterfaces = [\"wg0\"]", labSubnets, labSubnets + "\ninterfaces = [\"wg1\", \"wg0\"]"},
		at: "53:22", key: "zone.lab.interfaces[1]", msg: []string{`interface wg0 is also in zone "lan" (line 47); an interface belongs to one zone`}},
	{name: "listed twice", edits: []string{labSubnets, labSubnets + "\ninterfaces = [\"wg0\", \"wg0\"]"},
		at: "52:22", key: "zone.lab.interfaces[1]", msg: []string{`interface wg0 is listed twice in zone "lab" (line 52)`}},
}

func TestZoneInterfaceChecks(t *testing.T) { runErrCases(t, zoneInterfaceCases) }

var accessCases = []errCase{
	{name: "unknown management service", edits: afterHost("management = [\"ssh\", \"vnc\"]\n"),
		at: "4:22", key: "gateway.management[1]", msg: []string{`unknown service "vnc"; known services: dhcp, dns, ping, ssh (define others under [service.<name>])`}},
	{name: "web for management without metrics", edits: afterHost("management = [\"web\"]\n"),
		at: "4:15", key: "gateway.management[0]", msg: []string{`service "web" needs [gateway] metrics, which this file does not set`}},
	{name: "unknown management zone", edits: afterHost("management_zones = [\"lan\", \"office\"]\n"),
		at: "4:28", key: "gateway.management_zones[1]", msg: []string{`unknown zone "office"; management_zones names zones (lab, lan)`}},
	{name: "web allowed without metrics", edits: []string{`allow = ["dns"]`, `allow = ["dns", "web"]`},
		at: "52:17", key: "zone.lab.allow[1]", msg: []string{`service "web" needs [gateway] metrics, which this file does not set: the web page and the metrics listen there, and web opens its port`}},
	// Refused metrics are reported once, not again where a zone allows web.
	{name: "metrics on port 0", edits: append(afterHost("metrics = \"127.0.0.1:0\"\n"), `allow = ["dns"]`, `allow = ["dns", "web"]`),
		at: "4:1", key: "gateway.metrics", msg: []string{`metrics "127.0.0.1:0" names port 0; write a port, e.g. "127.0.0.1:9253"`}},
	{name: "metrics on a multicast address", edits: afterHost("metrics = \"224.0.0.1:9253\"\n"),
		at: "4:1", key: "gateway.metrics", msg: []string{"metrics cannot listen on 224.0.0.1: it is a multicast address"}},
	{name: "metrics without a port", edits: afterHost("metrics = \"127.0.0.1\"\n"),
		at: "4:1", key: "gateway.metrics", msg: []string{`"127.0.0.1" is not valid`, `want an address and a port, e.g. "127.0.0.1:9253"`}},
	{name: "stale answer after the timeout", edits: []string{"", "\n[dns.cache]\nstale_answer_after = \"5s\"\n"},
		at: "56:1", key: "dns.cache.stale_answer_after", msg: []string{"stale_answer_after (5s) is more than [dns] timeout (4s): the query is given up before a stale answer would be sent"}},
	{name: "stale answer after too long", edits: []string{"", "\n[dns.cache]\nstale_answer_after = \"2m\"\n"},
		at: "56:1", key: "dns.cache.stale_answer_after", msg: []string{`stale_answer_after = "2m" is too long: at most 1m`}},
}

func TestAccessChecks(t *testing.T) { runErrCases(t, accessCases) }

func TestUpstreamModel(t *testing.T) {
	if c := mustParse(t, baseDoc); c.Upstream != nil {
		t.Errorf("no [upstream], Upstream = %+v", c.Upstream)
	}
	c := mustParse(t, edit(t, baseDoc, withUpstream("interface = \"eth0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\naccept_ra = true\n")...))
	want := Upstream{Interface: "eth0", Address: netip.MustParsePrefix("203.0.113.2/24"), Gateway: addr("203.0.113.1"), AcceptRA: true}
	if c.Upstream == nil || *c.Upstream != want {
		t.Errorf("static upstream %+v, want %+v", c.Upstream, want)
	}
	if c.Router.Upstream.IsValid() {
		t.Errorf("router upstream %v with a WAN port", c.Router.Upstream)
	}
	c = mustParse(t, edit(t, baseDoc, withUpstream("interface = \"eth0\"\ndhcp = true\n")...))
	if want := (Upstream{Interface: "eth0", DHCP: true}); c.Upstream == nil || *c.Upstream != want {
		t.Errorf("DHCP upstream %+v, want %+v", c.Upstream, want)
	}
}

func TestZoneInterfaces(t *testing.T) {
	// A zone of interfaces only (a VPN), next to zones of subnets.
	c := mustParse(t, edit(t, baseDoc, "", "\n[zone.vpn]\ninterfaces = [\"wg0\", \"tun0\"]\nallow = [\"dns\"]\nforward = [\"lan\"]\n"))
	z := c.Zone("vpn")
	if z == nil || !slices.Equal(z.Interfaces, []string{"wg0", "tun0"}) || len(z.Subnets) != 0 || z.Implicit {
		t.Fatalf("zone vpn %+v", z)
	}
	if c.Zone("lan").Interfaces != nil {
		t.Errorf("zone lan interfaces %q, want none", c.Zone("lan").Interfaces)
	}
}

func TestAccessModel(t *testing.T) {
	c := mustParse(t, baseDoc)
	g := c.Gateway
	if !slices.Equal(g.Management, []string{"ssh", "ping"}) || g.ManagementZones != nil || g.Metrics.IsValid() {
		t.Errorf("management defaults %q %q, metrics %v", g.Management, g.ManagementZones, g.Metrics)
	}
	if c.Services["web"] != nil {
		t.Errorf("web service without metrics: %+v", c.Services["web"])
	}

	c = mustParse(t, edit(t, baseDoc, afterHost("management = []\nmanagement_zones = [\"lan\"]\nmetrics = \"192.168.1.1:9253\"\n")...))
	g = c.Gateway
	if len(g.Management) != 0 || !slices.Equal(g.ManagementZones, []string{"lan"}) || g.Metrics != netip.MustParseAddrPort("192.168.1.1:9253") {
		t.Errorf("management %q %q, metrics %v", g.Management, g.ManagementZones, g.Metrics)
	}
	web := c.Services["web"]
	if web == nil || !web.Builtin || web.Alias != "" || !slices.Equal(web.Ports, []PortSpec{{"tcp", 9253, 9253}}) {
		t.Errorf("web service %+v, want tcp/9253 on every alias", web)
	}
	// management_zones = [] is the default, not "no zone".
	c = mustParse(t, edit(t, baseDoc, afterHost("management_zones = []\n")...))
	if c.Gateway.ManagementZones != nil {
		t.Errorf("management_zones = [] gives %q", c.Gateway.ManagementZones)
	}
	// The file's own web service replaces the built-in, as for the others.
	c = mustParse(t, edit(t, baseDoc, append(afterHost("metrics = \"127.0.0.1:9253\"\n"), "", "\n[service.web]\nports = [\"tcp/80\"]\n")...))
	if web := c.Services["web"]; web.Builtin || !slices.Equal(web.Ports, []PortSpec{{"tcp", 80, 80}}) {
		t.Errorf("redefined web %+v", web)
	}
}

func TestNewRoleKeys(t *testing.T) {
	c := mustParse(t, baseDoc)
	if c.DNS.LogQueries || c.DNS.Cache.StaleAnswerAfter != 1800*time.Millisecond || c.Aliases[0].Adopt {
		t.Errorf("defaults: log_queries %v, stale_answer_after %v, adopt %v", c.DNS.LogQueries, c.DNS.Cache.StaleAnswerAfter, c.Aliases[0].Adopt)
	}
	c = mustParse(t, edit(t, baseDoc, "alias = \"dns\"\n", "alias = \"dns\"\nlog_queries = true\ncache = { stale_answer_after = \"0s\" }\n",
		"name = \"lab\"\n", "name = \"lab\"\nadopt = true\n"))
	if !c.DNS.LogQueries || c.DNS.Cache.StaleAnswerAfter != 0 || !c.Alias("lab").Adopt || c.Alias("dns").Adopt {
		t.Errorf("log_queries %v, stale_answer_after %v, adopt lab %v dns %v", c.DNS.LogQueries, c.DNS.Cache.StaleAnswerAfter, c.Alias("lab").Adopt, c.Alias("dns").Adopt)
	}
	// Left out, the delay never passes a shorter timeout.
	c = mustParse(t, edit(t, baseDoc, "alias = \"dns\"\n", "alias = \"dns\"\ntimeout = \"1s\"\n"))
	if got := c.DNS.Cache.StaleAnswerAfter; got != time.Second {
		t.Errorf("stale_answer_after with a 1s timeout = %v, want 1s", got)
	}
}
