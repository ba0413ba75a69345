package firewall

import (
	"net/netip"
	"slices"
)

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
	r := &Ruleset{Interface: p.Interface, Aliases: slices.Clone(p.Aliases), Zones: slices.Clone(p.Zones),
		Management: slices.Clone(p.Management)}
	if p.Upstream != nil {
		up := *p.Upstream
		r.Upstream = &up
	}
	for _, a := range r.Aliases {
		r.Counters = append(r.Counters, AliasCounter(a.Name, "in"), AliasCounter(a.Name, "out"))
	}
	for _, z := range r.Zones {
		r.Counters = append(r.Counters, zoneOrigin(z.Name).counters()...)
	}
	r.Counters = append(r.Counters, zoneOrigin(UpstreamZone).counters()...)
	r.Counters = append(r.Counters, closedOrigin.counters()...)
	r.Counters = append(r.Counters, LinkCounter)
	r.Sets = append(zoneSets(r.Zones), aliasSet(r.Aliases))

	r.Chains = []Chain{inputChain(r), forwardChain(r), outputChain(r)}
	if p.Masquerade {
		r.Chains = append(r.Chains, srcnatChain(r, p.SNAT))
	}
	r.Chains = append(r.Chains, upstreamInputChain(), upstreamForwardChain())
	zones := map[string]ZoneInfo{}
	for _, z := range r.Zones {
		zones[z.Name] = z
	}
	for _, z := range r.Zones {
		r.Chains = append(r.Chains, zoneInputChain(z), zoneForwardChain(r, z, zones))
	}
	return r
}

// AliasCounter names an alias's counter; dir is "in" or "out".
func AliasCounter(alias, dir string) string { return "alias_" + alias + "_" + dir }

// ZoneCounter names a zone's counter; what is "in", "fwd", "ret" or "drop".
func ZoneCounter(zone, what string) string { return "zone_" + zone + "_" + what }

// ClosedCounter names a counter of what arrives where no zone claims it
// (see closedOrigin); what is as for ZoneCounter.
func ClosedCounter(what string) string { return "closed_" + what }

// LinkCounter counts what keeps the link working before any zone can claim
// it: IPv6 neighbour and router discovery, MLD queries, DHCP DISCOVERs.
const LinkCounter = "link_in"

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

// inputChain counts what reaches each alias, accepts what keeps the link
// working, and hands every other packet to the chain of where it came from:
// a zone, the upstream, or (last) the closed interfaces.
func inputChain(r *Ruleset) Chain {
	c := Chain{Name: "input", Hook: "input", Type: "filter", Policy: "drop"}
	c.Rules = append(c.Rules, rule(IifLo{}, Accept))
	for _, a := range r.Aliases {
		c.Rules = append(c.Rules, rule(Addr{Field: Daddr, Prefix: single(a.Addr)}, Counter{AliasCounter(a.Name, "in")}))
	}
	c.Rules = append(c.Rules, linkRules(r)...)
	c.Rules = append(c.Rules, dispatch(r, InChain, MapZoneIn)...)
	return closedOrigin.close(c, false)
}

// linkRules keep IPv6 working on every link (see the package doc), take
// router advertisements only from the WAN port, and let DHCP clients without
// an address reach the DHCP role.
func linkRules(r *Ruleset) []Rule {
	var out []Rule
	for _, t := range []uint8{ICMPv6NeighSol, ICMPv6NeighAdv} {
		out = append(out, rule(ICMPType{V6: true, Type: t}, HopLimit{ndHopLimit}, Counter{LinkCounter}, Accept))
	}
	out = append(out, rule(ICMPType{V6: true, Type: ICMPv6MLDQuery}, Addr{Field: Saddr, Prefix: linkLocal}, Counter{LinkCounter}, Accept))
	if up := r.Upstream; up != nil && up.AcceptRA {
		out = append(out, rule(IifName{Name: up.Interface}, ICMPType{V6: true, Type: ICMPv6RouterAdv}, HopLimit{ndHopLimit}, Counter{LinkCounter}, Accept))
	}
	// The DISCOVER (0.0.0.0 → 255.255.255.255) matches no zone.
	if dhcpServed(r.Zones) {
		out = append(out, Rule{Comment: serviceDHCP, Exprs: []Expr{
			IifName{Name: r.Interface}, Addr{Field: Saddr, Prefix: single(anyAddr)},
			Addr{Field: Daddr, Prefix: single(broadcast)}, Port{Proto: "udp", From: 67, To: 67}, Counter{LinkCounter}, Accept,
		}})
	}
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

// dispatch sends a packet to the chain of its origin (chain names it for a
// zone): the zone naming its input interface first, then on the alias NIC
// the zone of its IPv4 source subnet (through map m), else the upstream,
// as is everything from the WAN port. What none of these claims falls
// through to the closed rules after them.
func dispatch(r *Ruleset, chain func(string) string, m string) []Rule {
	var out []Rule
	for _, z := range r.Zones {
		for _, ifc := range z.Interfaces {
			out = append(out, rule(IifName{Name: ifc}, Jump(chain(z.Name))))
		}
	}
	out = append(out,
		rule(IifName{Name: r.Interface}, Vmap{Saddr, m}),
		rule(IifName{Name: r.Interface}, NfProtoIPv4{}, Jump(chain(UpstreamZone))))
	if up := r.Upstream; up != nil {
		out = append(out, rule(IifName{Name: up.Interface}, Jump(chain(UpstreamZone))))
	}
	return out
}

func forwardChain(r *Ruleset) Chain {
	c := Chain{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop"}
	c.Rules = dispatch(r, FwdChain, MapZoneFwd)
	return closedOrigin.close(c, true)
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

// srcnatChain gives what is routed to the upstream the box's address. Out of
// the WAN port everything gets its address (the box's own traffic from an
// alias too, or its replies would never come back): the static one, or
// masquerade for a DHCP one (the DHCP client's own packets, from 0.0.0.0
// before it has a lease, leave through a packet socket and never meet
// this chain). Out of the alias NIC only what leaves towards outside every
// zone, and not the box's own, so replies keep leaving from the role's
// alias.
func srcnatChain(r *Ruleset, snat netip.Addr) Chain {
	c := Chain{Name: "srcnat", Hook: "postrouting", Type: "nat", Priority: 100, Policy: "accept"}
	if up := r.Upstream; up != nil {
		if up.Addr.IsValid() {
			c.Rules = append(c.Rules, rule(OifName{Name: up.Interface}, SNAT{up.Addr}))
		} else {
			c.Rules = append(c.Rules, rule(OifName{Name: up.Interface}, Masquerade{}))
		}
	}
	var nat Expr = Masquerade{}
	if snat.IsValid() {
		nat = SNAT{snat}
	}
	c.Rules = append(c.Rules, rule(OifName{Name: r.Interface}, InSet{Field: Daddr, Set: SetZones, Neg: true}, FibSaddrNotLocal{}, nat))
	return c
}

func rule(exprs ...Expr) Rule { return Rule{Exprs: exprs} }

func single(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
