package firewall

import (
	"net/netip"
	"strconv"
)

// Policy is the firewall's input: what this box holds and what every zone
// may reach, already resolved by the controller. Build turns it into the
// Ruleset, the table's desired state.
type Policy struct {
	// Interface is the NIC carrying the aliases. Source-subnet zones are
	// matched only on it; what arrives on it from outside every zone is the
	// upstream.
	Interface string
	Aliases   []AliasInfo // the aliases this box holds, in config order
	Zones     []ZoneInfo  // every zone, implicit ones last, Access resolved
	// Masquerade: the router role is held here with NAT on. Traffic routed
	// to the upstream leaves with the box's address: SNAT (or masquerade)
	// on Interface, and Upstream's address out of the WAN port.
	Masquerade bool
	// SNAT is the address traffic routed out of Interface to the upstream
	// gets as its source (the router alias). Invalid: masquerade, the
	// address the kernel picks for the route.
	SNAT netip.Addr
	// Upstream is the WAN port. Nil: the upstream router sits on the alias
	// wire (the single-NIC layout).
	Upstream *Uplink
	// Management names the services (the controller's default: ssh and
	// ping) whose loss Diff warns about, whichever address they are on.
	// A service opening tcp/22 counts whatever its name.
	Management []string
}

// Uplink is the WAN port: an interface of its own towards the ISP. What
// arrives on it belongs to zone "upstream" and reaches nothing but the
// replies of allowed flows.
type Uplink struct {
	Interface string
	// Addr is the WAN's static address, the source of everything routed
	// out of it (snat). Invalid: a DHCP client learns the address, so
	// traffic is masqueraded (the client itself needs no rule: it uses a
	// packet socket, which netfilter does not see).
	Addr netip.Addr
	// AcceptRA accepts IPv6 router advertisements on this interface, and
	// only here.
	AcceptRA bool
}

// AliasInfo is one alias held by this box.
type AliasInfo struct {
	Name string
	Addr netip.Addr
}

// ZoneInfo is the policy of one zone, resolved by the controller.
type ZoneInfo struct {
	Name string
	// Subnets are the IPv4 source subnets of the zone on the alias NIC.
	Subnets []netip.Prefix
	// Interfaces are interfaces whose traffic (IPv4 and IPv6, any source)
	// belongs to the zone, as fw4 zones name devices. An interface match
	// takes precedence over a source-subnet match: naming the alias NIC
	// here puts everything on it in this zone.
	Interfaces []string
	Implicit   bool
	// Access lists what the zone may reach on this box's aliases.
	Access []Access
	// Manage lists the management services the zone may reach on the
	// box's own addresses that are not aliases: the NIC's primary
	// address and any address added by hand. They are matched without
	// being known (a local destination outside @aliases_v4), so the
	// admin's way in survives whatever address the box has.
	Manage []ServicePort
	// Forward lists the zones (or "upstream") it may be routed to.
	Forward []string
}

// Access is one service port the zone may reach on one address of this box.
type Access struct {
	Service string
	Addr    netip.Addr
	Port    PortRange
	// Every is set for a service without an alias: it is served on every
	// alias held here (one Access per alias), and one rule matches them all
	// (@aliases_v4).
	Every bool
}

// ServicePort is one port of a named service.
type ServicePort struct {
	Service string
	Port    PortRange
}

// PortRange is one protocol and port range a service opens: Proto "tcp" or
// "udp" with From <= To, or "icmp" with both ports 0, which opens ICMP echo
// requests (ping), and ICMPv6 echo requests where IPv6 reaches the zone (the
// interfaces it names). It is an input of Build, not an expression of a rule
// (see Port).
type PortRange struct {
	Proto    string
	From, To uint16
}

// String prints the range as a site file spells it: "tcp/22",
// "tcp/8000-8080", "icmp".
func (p PortRange) String() string {
	switch {
	case p.Proto == "icmp":
		return "icmp"
	case p.From == p.To:
		return p.Proto + "/" + strconv.Itoa(int(p.From))
	}
	return p.Proto + "/" + strconv.Itoa(int(p.From)) + "-" + strconv.Itoa(int(p.To))
}

// covers reports whether p opens everything q opens.
func (p PortRange) covers(q PortRange) bool {
	return p.Proto == q.Proto && p.From <= q.From && q.To <= p.To
}
