package firewall

import (
	"fmt"
	"net/netip"
	"slices"
)

// logPrefixMax is the kernel's limit on a log prefix, without its NUL.
const logPrefixMax = 127

// origin is where a packet comes from, for accounting: a zone, the upstream,
// or the closed rest. Input and forward hand every packet (loopback and the
// link rules aside) to exactly one origin, and each of its rules that ends
// the packet's way counts it in exactly one of the origin's counters:
//
//   - in: accepted to this box;
//   - fwd: forwarded, of a flow the origin opened (ct direction original);
//   - ret: forwarded replies the origin sent back to flows opened elsewhere
//     (zone_upstream_ret is what comes back from the upstream);
//   - drop: dropped, invalid conntrack state included.
type origin struct {
	log                string // the log prefix of its drops
	in, fwd, ret, drop string // its counters
}

func zoneOrigin(zone string) origin {
	return origin{
		log: logPrefix(zone),
		in:  ZoneCounter(zone, "in"), fwd: ZoneCounter(zone, "fwd"),
		ret: ZoneCounter(zone, "ret"), drop: ZoneCounter(zone, "drop"),
	}
}

// closedOrigin is what no zone claims and is not the upstream: everything
// arriving on an interface that no zone names, and IPv6 on the alias NIC
// (zones are IPv4 subnets there). Its established flows pass (the admin's
// sessions survive a first start); nothing new does. The kernel's log line
// names the interface (IN=); the prefix cannot be a zone's, having spaces.
var closedOrigin = origin{
	log: "gatewayd drop, no zone: ",
	in:  ClosedCounter("in"), fwd: ClosedCounter("fwd"), ret: ClosedCounter("ret"), drop: ClosedCounter("drop"),
}

func (o origin) counters() []string { return []string{o.in, o.fwd, o.ret, o.drop} }

// established accepts what belongs to allowed flows, counted by direction,
// and drops what conntrack cannot place.
//
// A namespace tracks nothing until a ruleset uses conntrack, so a TCP
// session opened before the first start (the admin's SSH) reaches the box
// as a segment in state new without SYN. Nothing here takes such segments
// up: a zone's service rules match the destination and port, not the
// flags, so a session to a service its zone may reach is accepted there and
// conntrack places it; any other (from the upstream, a closed interface, or
// to a port the zone may not reach) is dropped like a new connection. So an
// ACK scan gets no reset, and a flood of spoofed ACKs creates no conntrack
// entries, except on the services a zone may reach anyway.
func (o origin) established(forward bool) []Rule {
	ok := CtState{CtEstablished | CtRelated}
	if !forward {
		return []Rule{
			rule(ok, Counter{o.in}, Accept),
			rule(CtState{CtInvalid}, Counter{o.drop}, Drop),
		}
	}
	return []Rule{
		rule(ok, CtOriginal{}, Counter{o.fwd}, Accept),
		rule(ok, Counter{o.ret}, Accept),
		rule(CtState{CtInvalid}, Counter{o.drop}, Drop),
	}
}

// dropRules log (rate limited) and drop, counted, what the origin is not
// allowed.
func (o origin) dropRules() []Rule {
	return []Rule{
		rule(Limit{dropLogRate, dropLogBurst}, Log{o.log}),
		rule(Counter{o.drop}, Drop),
	}
}

// close ends c with the origin's established and drop rules.
func (o origin) close(c Chain, forward bool) Chain {
	c.Rules = append(c.Rules, o.established(forward)...)
	c.Rules = append(c.Rules, o.dropRules()...)
	return c
}

func logPrefix(zone string) string {
	p := fmt.Sprintf("gatewayd drop %s: ", zone)
	if len(p) > logPrefixMax {
		p = p[:logPrefixMax]
	}
	return p
}

// upstreamInputChain: the upstream reaches the box only with replies. A
// WAN port whose address DHCP learns needs no rule: the router's DHCP
// client reads through a packet socket, which sees the server's answers
// before netfilter does.
func upstreamInputChain() Chain {
	return zoneOrigin(UpstreamZone).close(Chain{Name: InChain(UpstreamZone)}, false)
}

// upstreamForwardChain: the upstream is routed nowhere, replies aside.
func upstreamForwardChain() Chain {
	return zoneOrigin(UpstreamZone).close(Chain{Name: FwdChain(UpstreamZone)}, true)
}

func zoneInputChain(z ZoneInfo) Chain {
	o := zoneOrigin(z.Name)
	c := Chain{Name: InChain(z.Name), Rules: o.established(false)}
	bcast := map[PortRange]bool{}
	every := map[Access]bool{}
	ping := ""
	for _, a := range z.Access {
		if a.Every {
			key := Access{Service: a.Service, Port: a.Port}
			if !every[key] {
				every[key] = true
				c.Rules = append(c.Rules, serviceRule(a.Service, a.Port, o, InSet{Field: Daddr, Set: SetAliases}))
			}
		} else {
			c.Rules = append(c.Rules, serviceRule(a.Service, a.Port, o, Addr{Field: Daddr, Prefix: single(a.Addr)}))
		}
		// DHCP clients rebinding or without a lease broadcast their requests.
		if a.Service == serviceDHCP && a.Port.Proto == "udp" && !bcast[a.Port] {
			bcast[a.Port] = true
			c.Rules = append(c.Rules, serviceRule(a.Service, a.Port, o, Addr{Field: Daddr, Prefix: single(broadcast)}))
		}
		if a.Port.Proto == "icmp" && ping == "" {
			ping = a.Service
		}
	}
	seen := map[ServicePort]bool{}
	for _, m := range z.Manage {
		if !seen[m] {
			seen[m] = true
			c.Rules = append(c.Rules, serviceRule(m.Service, m.Port, o, InSet{Field: Daddr, Set: SetAliases, Neg: true}, FibDaddrLocal{}))
		}
		if m.Port.Proto == "icmp" && ping == "" {
			ping = m.Service
		}
	}
	// IPv6 reaches a zone only through the interfaces it names; the box
	// has no IPv6 aliases, so ping opens echo to any of its addresses.
	if ping != "" && len(z.Interfaces) > 0 {
		c.Rules = append(c.Rules, Rule{Comment: ping, Exprs: []Expr{ICMPType{V6: true, Type: ICMPv6EchoRequest}, Counter{o.in}, Accept}})
	}
	c.Rules = append(c.Rules, o.dropRules()...)
	return c
}

// serviceRule accepts port on the destination dst matches, counted.
func serviceRule(service string, port PortRange, o origin, dst ...Expr) Rule {
	exprs := slices.Clone(dst)
	if port.Proto == "icmp" {
		exprs = append(exprs, ICMPType{Type: ICMPEchoRequest})
	} else {
		exprs = append(exprs, Port{Proto: port.Proto, From: port.From, To: port.To})
	}
	return Rule{Exprs: append(exprs, Counter{o.in}, Accept), Comment: service}
}

// zoneForwardChain routes the zone where it may go: out of the interfaces a
// target zone names or to its subnets on the alias NIC; for the upstream, out
// of the WAN port and to outside every zone on the alias NIC.
func zoneForwardChain(r *Ruleset, z ZoneInfo, zones map[string]ZoneInfo) Chain {
	o := zoneOrigin(z.Name)
	c := Chain{Name: FwdChain(z.Name), Rules: o.established(true)}
	to := func(name string, exprs ...Expr) {
		c.Rules = append(c.Rules, Rule{Comment: name, Exprs: append(exprs, Counter{o.fwd}, Accept)})
	}
	for _, name := range z.Forward {
		if name == UpstreamZone {
			to(name, OifName{Name: r.Interface}, InSet{Field: Daddr, Set: SetZones, Neg: true})
			if up := r.Upstream; up != nil {
				to(name, OifName{Name: up.Interface})
			}
			continue
		}
		t := zones[name]
		for _, ifc := range t.Interfaces {
			to(name, OifName{Name: ifc})
		}
		dst := slices.Clone(t.Subnets)
		slices.SortFunc(dst, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		for _, sn := range dst {
			to(name, OifName{Name: r.Interface}, Addr{Field: Daddr, Prefix: sn.Masked()})
		}
	}
	c.Rules = append(c.Rules, o.dropRules()...)
	return c
}
