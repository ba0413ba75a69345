package firewall

import (
	"fmt"
	"net/netip"
	"slices"
)

// logPrefixMax is the kernel's limit on a log prefix, without its NUL.
const logPrefixMax = 127

// Service names Build treats specially.
const (
	serviceDHCP = "dhcp"
)

var (
	broadcast = netip.MustParseAddr("255.255.255.255")
	anyAddr   = netip.MustParseAddr("0.0.0.0")
	linkLocal = netip.MustParsePrefix("fe80::/10")
)

// Build turns the policy into the ruleset this box should run: the aliases it
// holds, every zone (implicit ones included), the services each zone may
// reach on the alias serving them, and the router's forward and NAT intent.
// It reads nothing but p, and keeps none of p's slices it could append to.
func Build(p Policy) *Ruleset {
	r := &Ruleset{Interface: p.Interface, Aliases: slices.Clone(p.Aliases), Zones: slices.Clone(p.Zones)}
	for _, a := range r.Aliases {
		r.Counters = append(r.Counters, AliasCounter(a.Name, "in"), AliasCounter(a.Name, "out"))
	}
	for _, z := range r.Zones {
		r.Counters = append(r.Counters, ZoneCounter(z.Name, "in"), ZoneCounter(z.Name, "fwd"), ZoneCounter(z.Name, "drop"))
	}
	r.Counters = append(r.Counters, ZoneCounter(UpstreamZone, "drop"))
	r.Sets = append(zoneSets(r.Zones), aliasSet(r.Aliases))

	r.Chains = []Chain{inputChain(r), forwardChain(r.Interface), outputChain(r)}
	if p.Masquerade {
		r.Chains = append(r.Chains, srcnatChain())
	}
	subnets := map[string][]netip.Prefix{}
	for _, z := range r.Zones {
		subnets[z.Name] = z.Subnets
	}
	for _, z := range r.Zones {
		r.Chains = append(r.Chains, zoneInputChain(z), zoneForwardChain(z, subnets))
	}
	return r
}

// AliasCounter names an alias's counter; dir is "in" or "out".
func AliasCounter(alias, dir string) string { return "alias_" + alias + "_" + dir }

// ZoneCounter names a zone's counter; what is "in", "fwd" or "drop".
func ZoneCounter(zone, what string) string { return "zone_" + zone + "_" + what }

// InChain and FwdChain name a zone's chains.
func InChain(zone string) string  { return "in_" + zone }
func FwdChain(zone string) string { return "fwd_" + zone }

// zoneSets builds zones_v4 and the two dispatch maps, sorted by address.
func zoneSets(zones []ZoneInfo) []Set {
	all := Set{Name: SetZones}
	in := Set{Name: MapZoneIn, Map: true}
	fwd := Set{Name: MapZoneFwd, Map: true}
	for _, z := range zones {
		for _, sn := range z.Subnets {
			all.Elements = append(all.Elements, Element{Prefix: sn.Masked()})
			in.Elements = append(in.Elements, Element{Prefix: sn.Masked(), Jump: InChain(z.Name)})
			fwd.Elements = append(fwd.Elements, Element{Prefix: sn.Masked(), Jump: FwdChain(z.Name)})
		}
	}
	for _, s := range []*Set{&all, &in, &fwd} {
		slices.SortFunc(s.Elements, func(a, b Element) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	}
	return []Set{all, in, fwd}
}

// aliasSet holds the addresses of the aliases held here, for services
// served on every alias.
func aliasSet(aliases []AliasInfo) Set {
	s := Set{Name: SetAliases}
	for _, a := range aliases {
		s.Elements = append(s.Elements, Element{Prefix: single(a.Addr)})
	}
	slices.SortFunc(s.Elements, func(a, b Element) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return s
}

func inputChain(r *Ruleset) Chain {
	c := Chain{Name: "input", Hook: "input", Type: "filter", Policy: "drop"}
	c.Rules = append(c.Rules, rule(IifLo{}, Accept))
	c.Rules = append(c.Rules, otherInterfaces(r.Interface)...)
	for _, a := range r.Aliases {
		c.Rules = append(c.Rules, rule(Addr{Field: Daddr, Prefix: single(a.Addr)}, Counter{AliasCounter(a.Name, "in")}))
	}
	c.Rules = append(c.Rules, rule(CtState{CtInvalid}, Drop))
	if r.Interface != "" && dhcpServed(r.Zones) {
		c.Rules = append(c.Rules, Rule{Comment: serviceDHCP, Exprs: []Expr{
			IifName{Name: r.Interface}, Addr{Field: Saddr, Prefix: single(anyAddr)},
			Addr{Field: Daddr, Prefix: single(broadcast)}, Port{"udp", 67, 67}, Accept,
		}})
	}
	c.Rules = append(c.Rules, rule(Vmap{Saddr, MapZoneIn}), rule(CtState{CtEstablished | CtRelated}, Accept))
	c.Rules = append(c.Rules, ipv6Rules()...)
	c.Rules = append(c.Rules, dropRules(UpstreamZone)...)
	return c
}

// ipv6Rules keep IPv6 working on the link (see the package doc).
func ipv6Rules() []Rule {
	var out []Rule
	for _, t := range []uint8{ICMPv6NeighSol, ICMPv6NeighAdv, ICMPv6RouterAdv} {
		out = append(out, rule(ICMPType{V6: true, Type: t}, HopLimit{ndHopLimit}, Accept))
	}
	out = append(out, rule(ICMPType{V6: true, Type: ICMPv6MLDQuery}, Addr{Field: Saddr, Prefix: linkLocal}, Accept))
	return out
}

// dhcpServed reports whether some zone reaches the DHCP service here.
func dhcpServed(zones []ZoneInfo) bool {
	for _, z := range zones {
		for _, a := range z.Access {
			if a.Service == serviceDHCP {
				return true
			}
		}
	}
	return false
}

// otherInterfaces leaves what arrives on other interfaces (a management NIC,
// container bridges) to the box's other firewalls: gatewayd polices its NIC.
func otherInterfaces(nic string) []Rule {
	if nic == "" {
		return nil
	}
	return []Rule{rule(IifName{Name: nic, Neg: true}, Accept)}
}

func forwardChain(nic string) Chain {
	c := Chain{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop"}
	c.Rules = otherInterfaces(nic)
	c.Rules = append(c.Rules,
		rule(CtState{CtInvalid}, Drop),
		rule(Vmap{Saddr, MapZoneFwd}),
		rule(CtState{CtEstablished | CtRelated}, Accept))
	c.Rules = append(c.Rules, dropRules(UpstreamZone)...)
	return c
}

func outputChain(r *Ruleset) Chain {
	c := Chain{Name: "output", Hook: "output", Type: "filter", Policy: "accept"}
	c.Rules = append(c.Rules, rule(OifLo{}, Accept))
	for _, a := range r.Aliases {
		c.Rules = append(c.Rules, rule(Addr{Field: Saddr, Prefix: single(a.Addr)}, Counter{AliasCounter(a.Name, "out")}))
	}
	c.Rules = append(c.Rules,
		rule(ICMPType{Type: ICMPRedirect}, Drop),
		rule(ICMPType{V6: true, Type: ICMPv6NDRedirect}, Drop))
	return c
}

func srcnatChain() Chain {
	return Chain{Name: "srcnat", Hook: "postrouting", Type: "nat", Priority: 100, Policy: "accept", Rules: []Rule{
		rule(InSet{Field: Saddr, Set: SetZones}, InSet{Field: Daddr, Set: SetZones, Neg: true}, FibSaddrNotLocal{}, Masquerade{}),
	}}
}

func zoneInputChain(z ZoneInfo) Chain {
	c := Chain{Name: InChain(z.Name)}
	c.Rules = append(c.Rules, rule(Counter{ZoneCounter(z.Name, "in")}, CtState{CtEstablished | CtRelated}, Accept))
	bcast := map[PortRange]bool{}
	every := map[Access]bool{}
	for _, a := range z.Access {
		if a.Every {
			key := Access{Service: a.Service, Port: a.Port}
			if !every[key] {
				every[key] = true
				c.Rules = append(c.Rules, accessRule(a, InSet{Field: Daddr, Set: SetAliases}))
			}
		} else {
			c.Rules = append(c.Rules, accessRule(a, Addr{Field: Daddr, Prefix: single(a.Addr)}))
		}
		// DHCP clients rebinding or without a lease broadcast their requests.
		if a.Service == serviceDHCP && a.Port.Proto == "udp" && !bcast[a.Port] {
			bcast[a.Port] = true
			c.Rules = append(c.Rules, accessRule(a, Addr{Field: Daddr, Prefix: single(broadcast)}))
		}
	}
	c.Rules = append(c.Rules, dropRules(z.Name)...)
	return c
}

func accessRule(a Access, dst Expr) Rule {
	exprs := []Expr{dst}
	if a.Port.Proto == "icmp" {
		exprs = append(exprs, IPProto{"icmp"})
	} else {
		exprs = append(exprs, Port{a.Port.Proto, a.Port.From, a.Port.To})
	}
	return Rule{Exprs: append(exprs, Accept), Comment: a.Service}
}

func zoneForwardChain(z ZoneInfo, subnets map[string][]netip.Prefix) Chain {
	c := Chain{Name: FwdChain(z.Name)}
	c.Rules = append(c.Rules, rule(Counter{ZoneCounter(z.Name, "fwd")}, CtState{CtEstablished | CtRelated}, Accept))
	for _, to := range z.Forward {
		if to == UpstreamZone {
			c.Rules = append(c.Rules, Rule{Comment: to, Exprs: []Expr{InSet{Field: Daddr, Set: SetZones, Neg: true}, Accept}})
			continue
		}
		dst := slices.Clone(subnets[to])
		slices.SortFunc(dst, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		for _, sn := range dst {
			c.Rules = append(c.Rules, Rule{Comment: to, Exprs: []Expr{Addr{Field: Daddr, Prefix: sn.Masked()}, Accept}})
		}
	}
	c.Rules = append(c.Rules, dropRules(z.Name)...)
	return c
}

// dropRules log (rate limited) and drop, counted, what a zone is not allowed.
func dropRules(zone string) []Rule {
	return []Rule{
		rule(Limit{dropLogRate, dropLogBurst}, Log{logPrefix(zone)}),
		rule(Counter{ZoneCounter(zone, "drop")}, Drop),
	}
}

func logPrefix(zone string) string {
	p := fmt.Sprintf("gatewayd drop %s: ", zone)
	if len(p) > logPrefixMax {
		p = p[:logPrefixMax]
	}
	return p
}

func rule(exprs ...Expr) Rule { return Rule{Exprs: exprs} }

func single(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
