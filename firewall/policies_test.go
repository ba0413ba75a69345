package firewall

import (
	"fmt"
	"net/netip"
	"slices"
)

// The policies the tests build rulesets from, written out as the controller
// resolves them: zones in config order (sorted by name, implicit zones
// last), each zone's Access in the order of its allow list, a service's
// ports per address, and a service without an alias listed once per alias
// held here.

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func subnets(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func tcpPort(from, to uint16) PortRange { return PortRange{Proto: "tcp", From: from, To: to} }
func udpPort(from, to uint16) PortRange { return PortRange{Proto: "udp", From: from, To: to} }

var icmp = PortRange{Proto: "icmp"}

// serve is service on each of addrs, every port on each address; every says
// the service has no alias (it is served on every alias held here).
func serve(service string, every bool, addrs []netip.Addr, ports ...PortRange) []Access {
	var out []Access
	for _, a := range addrs {
		for _, p := range ports {
			out = append(out, Access{Service: service, Addr: a, Port: p, Every: every})
		}
	}
	return out
}

func addrsOf(aliases []AliasInfo) []netip.Addr {
	var out []netip.Addr
	for _, a := range aliases {
		out = append(out, a.Addr)
	}
	return out
}

// The seed's aliases (etc/gateway.toml).
var (
	seedRouter = addr("192.168.1.1")
	seedDHCP   = addr("192.168.1.2")
	seedDNS    = addr("192.168.1.3")
	seedLab    = addr("10.0.0.1")
)

func seedAliases() []AliasInfo {
	return []AliasInfo{{"router", seedRouter}, {"dhcp", seedDHCP}, {"dns", seedDNS}, {"lab", seedLab}}
}

func seedDHCPAccess() []Access { return serve("dhcp", false, []netip.Addr{seedDHCP}, udpPort(67, 67)) }
func seedDNSAccess() []Access {
	return serve("dns", false, []netip.Addr{seedDNS}, udpPort(53, 53), tcpPort(53, 53))
}
func seedSSHAccess() []Access { return serve("ssh", false, []netip.Addr{seedRouter}, tcpPort(22, 22)) }

// seedPolicy is the seed scenario, etc/gateway.toml, on its host: it holds
// every alias; lan may reach dhcp, dns, ssh and ping and is routed to the
// upstream and lab; lab may reach dhcp, dns and ping and only the upstream.
func seedPolicy() Policy {
	aliases := seedAliases()
	ping := serve("ping", true, addrsOf(aliases), icmp)
	return Policy{
		Interface:  "eth1",
		Aliases:    aliases,
		Masquerade: true,
		Zones: []ZoneInfo{
			{Name: "lab", Subnets: subnets("10.0.0.0/24"), Forward: []string{"upstream"},
				Access: slices.Concat(seedDHCPAccess(), seedDNSAccess(), ping)},
			{Name: "lan", Subnets: subnets("192.168.1.0/24"), Forward: []string{"upstream", "lab"},
				Access: slices.Concat(seedDHCPAccess(), seedDNSAccess(), seedSSHAccess(), ping)},
		},
	}
}

// seedZone returns the seed zone named name in p.
func seedZone(p *Policy, name string) *ZoneInfo {
	for i := range p.Zones {
		if p.Zones[i].Name == name {
			return &p.Zones[i]
		}
	}
	panic("no zone " + name)
}

// seedLabSSH is the seed with ssh (on the router alias) allowed to lab too,
// after ping as in allow = ["dhcp", "dns", "ping", "ssh"].
func seedLabSSH() Policy {
	p := seedPolicy()
	z := seedZone(&p, "lab")
	z.Access = append(z.Access, seedSSHAccess()...)
	return p
}

// seedGuest is the seed with one more alias, guest (172.16.0.1/24), on a
// subnet no zone names: ping reaches it too, and it gets the closed implicit
// zone auto-guest.
func seedGuest() Policy {
	p := seedPolicy()
	guest := addr("172.16.0.1")
	p.Aliases = append(p.Aliases, AliasInfo{"guest", guest})
	for i := range p.Zones {
		p.Zones[i].Access = append(p.Zones[i].Access, serve("ping", true, []netip.Addr{guest}, icmp)...)
	}
	p.Zones = append(p.Zones, ZoneInfo{Name: "auto-guest", Subnets: subnets("172.16.0.0/24"), Implicit: true})
	return p
}

// nozonesPolicy: no aliases, no zones, no roles; only the base policy.
func nozonesPolicy() Policy { return Policy{Interface: "eth1"} }

// outsidePolicy is the seed's lan zone (ssh and ping, routed upstream) and
// an alias, guest, on a subnet no zone names: it gets the implicit closed
// zone auto-guest. The router role is held here with NAT.
func outsidePolicy() Policy {
	router, guest := addr("192.168.1.1"), addr("172.16.5.1")
	return Policy{
		Interface:  "eth1",
		Aliases:    []AliasInfo{{"router", router}, {"guest", guest}},
		Masquerade: true,
		Zones: []ZoneInfo{
			{Name: "lan", Subnets: subnets("192.168.1.0/24"), Forward: []string{"upstream"},
				Access: slices.Concat(
					serve("ssh", false, []netip.Addr{router}, tcpPort(22, 22)),
					serve("ping", true, []netip.Addr{router, guest}, icmp))},
			{Name: "auto-guest", Subnets: subnets("172.16.5.0/24"), Implicit: true},
		},
	}
}

// manyPolicy has several zones, multi-subnet zones, a port range (web), a
// service served on every alias (metrics), a role (dhcp) whose alias another
// box holds, so that dhcp opens nothing, and no NAT.
func manyPolicy() Policy {
	router, dns, iot := addr("192.168.1.1"), addr("192.168.1.3"), addr("10.20.0.1")
	held := []netip.Addr{router, dns, iot}
	dnsAccess := func() []Access { return serve("dns", false, []netip.Addr{dns}, udpPort(53, 53), tcpPort(53, 53)) }
	ssh := func() []Access { return serve("ssh", false, []netip.Addr{router}, tcpPort(22, 22)) }
	ping := func() []Access { return serve("ping", true, held, icmp) }
	return Policy{
		Interface: "lan0",
		Aliases:   []AliasInfo{{"router", router}, {"dns", dns}, {"iot", iot}},
		Zones: []ZoneInfo{
			{Name: "iot", Subnets: subnets("10.20.0.0/16"), Forward: []string{}, Access: dnsAccess()},
			{Name: "lab", Subnets: subnets("10.30.0.0/24", "10.31.0.0/24", "10.29.128.0/17"), Forward: []string{"upstream", "lab"},
				Access: slices.Concat(dnsAccess(), ping())},
			{Name: "lan", Subnets: subnets("192.168.1.0/24"), Forward: []string{"upstream", "iot", "lab"},
				Access: slices.Concat(dnsAccess(), ssh(), ping(),
					serve("web", false, []netip.Addr{router}, tcpPort(80, 80), tcpPort(443, 443), tcpPort(8000, 8080)),
					serve("metrics", true, held, tcpPort(9100, 9100)))},
			{Name: "vpn", Subnets: subnets("172.31.255.0/30"), Forward: []string{"lan", "lab"}, Access: ssh()},
		},
	}
}

// manyZones is a policy with n zones of one /24 each (10.a.b.0/24) besides
// lan, every zone allowed dns and ping (only dns when noPing) and routed to
// the upstream and the next zone: with n = 1000 that is about 2,000 forward
// rules and 10,000 rules in all. The box holds router and dns, with NAT.
func manyZones(n int, noPing bool) Policy {
	router, dns := addr("192.168.1.1"), addr("192.168.1.3")
	held := []netip.Addr{router, dns}
	dnsAccess := func() []Access { return serve("dns", false, []netip.Addr{dns}, udpPort(53, 53), tcpPort(53, 53)) }
	ping := serve("ping", true, held, icmp)
	p := Policy{
		Interface:  "eth1",
		Aliases:    []AliasInfo{{"router", router}, {"dns", dns}},
		Masquerade: true,
		Zones: []ZoneInfo{{Name: "lan", Subnets: subnets("192.168.1.0/24"), Forward: []string{"upstream"},
			Access: slices.Concat(dnsAccess(), serve("ssh", false, []netip.Addr{router}, tcpPort(22, 22)), ping)}},
	}
	for i := range n {
		z := ZoneInfo{
			Name:    fmt.Sprintf("z%04d", i),
			Subnets: subnets(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)),
			Forward: []string{"upstream", fmt.Sprintf("z%04d", (i+1)%n)},
			Access:  dnsAccess(),
		}
		if !noPing {
			z.Access = append(z.Access, ping...)
		}
		p.Zones = append(p.Zones, z)
	}
	return p
}

// seedLanNotToLab is the seed with lan routed only to the upstream.
func seedLanNotToLab() Policy {
	p := seedPolicy()
	seedZone(&p, "lan").Forward = []string{"upstream"}
	return p
}

// wanPolicy is the seed on a router box with a WAN port (wan0, static
// 203.0.113.2, router advertisements taken there), a zone vpn on the tunnel
// wg0 (ssh and ping, routed to lan and the upstream, lan routed to it), lan
// managing the box (ssh and ping on its own addresses), and the alias NIC's
// NAT to the router alias.
func wanPolicy() Policy {
	p := seedPolicy()
	p.Upstream = &Uplink{Interface: "wan0", Addr: addr("203.0.113.2"), AcceptRA: true}
	p.SNAT = seedRouter
	p.Management = []string{"ssh", "ping"}
	lan := seedZone(&p, "lan")
	lan.Manage = []ServicePort{{"ssh", tcpPort(22, 22)}, {"ping", icmp}}
	lan.Forward = append(lan.Forward, "vpn")
	p.Zones = append(p.Zones, ZoneInfo{Name: "vpn", Interfaces: []string{"wg0"}, Forward: []string{"upstream", "lan"},
		Access: slices.Concat(seedSSHAccess(), serve("ping", true, addrsOf(p.Aliases), icmp)),
		Manage: []ServicePort{{"ssh", tcpPort(22, 22)}}})
	return p
}

// dhcpWANPolicy is wanPolicy with the WAN address learned by DHCP (so
// masqueraded, and the DHCP server's replies accepted), no RAs taken, and
// the alias NIC masqueraded.
func dhcpWANPolicy() Policy {
	p := wanPolicy()
	p.Upstream = &Uplink{Interface: "wan0"}
	p.SNAT = netip.Addr{}
	return p
}
