package firewall

import "net/netip"

// Table names gatewayd's table; it is the only table the package touches.
const (
	Table  = "gatewayd"
	Family = "inet"
)

// Names of the sets and maps every ruleset has.
const (
	SetZones   = "zones_v4"   // every zone subnet
	SetAliases = "aliases_v4" // every alias address held here
	MapZoneIn  = "zone_in"    // source subnet → jump in_<zone>
	MapZoneFwd = "zone_fwd"   // source subnet → jump fwd_<zone>
)

// UpstreamZone names what lies outside every zone: the WAN port, and on
// the alias NIC the IPv4 sources no zone claims. As a Forward target it means
// the WAN port and the destinations outside every zone on the alias NIC; it
// names the chains, counters and log prefix of what arrives from there.
const UpstreamZone = "upstream"

// Ruleset is the whole of table inet gatewayd, as data. It is built by Build,
// rendered by Render and applied by Firewall.Set; nothing in it depends on the
// kernel.
type Ruleset struct {
	// Interface is the alias NIC.
	Interface string
	// Upstream is the WAN port, or nil (see Policy.Upstream).
	Upstream *Uplink
	// Aliases are the aliases this box holds, in config order.
	Aliases []AliasInfo
	// Zones are the zones in config order (implicit zones last).
	Zones []ZoneInfo
	// Management names the management services (see Policy.Management).
	Management []string
	// Counters are the named counter objects, in rendering order.
	Counters []string
	// Sets are the named sets and verdict maps.
	Sets []Set
	// Chains are the base chains, then each zone's chains.
	Chains []Chain
}

// Set is a named interval set of IPv4 prefixes (or addresses), or, when Map is true, an
// interval verdict map whose elements jump to a chain.
type Set struct {
	Name     string
	Map      bool
	Elements []Element
}

// Element is one prefix of a set; Jump names the chain of a map element.
type Element struct {
	Prefix netip.Prefix
	Jump   string
}

// Chain is a chain of the table. Base chains have a Hook.
type Chain struct {
	Name string
	// Hook is "input", "forward", "output" or "postrouting"; "" for a
	// regular chain.
	Hook     string
	Type     string // "filter" or "nat"
	Priority int    // 0 (filter) or 100 (srcnat)
	Policy   string // "accept" or "drop"
	Rules    []Rule
}

// Base reports whether the chain is attached to a hook.
func (c Chain) Base() bool { return c.Hook != "" }

// Rule is a list of expressions, the last of which is usually a verdict.
type Rule struct {
	Exprs   []Expr
	Comment string
}

// Expr is one match or statement of a rule. The concrete types below are the
// whole vocabulary: Render prints each as nft syntax and the kernel edge
// encodes each as netlink expressions.
type Expr interface{ String() string }

// Field is the address a match reads.
type Field int

// Address fields.
const (
	Saddr Field = iota
	Daddr
)

func (f Field) String() string {
	if f == Saddr {
		return "saddr"
	}
	return "daddr"
}

// Conntrack states (the kernel's bit values).
const (
	CtInvalid     = 1
	CtEstablished = 2
	CtRelated     = 4
)

type (
	// IifLo matches packets from the loopback interface.
	IifLo struct{}
	// OifLo matches packets to the loopback interface.
	OifLo struct{}
	// IifName matches the input interface by name.
	IifName struct{ Name string }
	// OifName matches the output interface by name.
	OifName struct{ Name string }
	// NfProtoIPv4 matches IPv4 packets (an inet table sees both families).
	NfProtoIPv4 struct{}
	// CtState matches any of the conntrack states in Mask.
	CtState struct{ Mask uint32 }
	// CtOriginal matches packets going the way of the one that opened
	// their connection (ct direction original), not its replies.
	CtOriginal struct{}
	// Addr matches an IPv4 or IPv6 address field against a prefix (a
	// single address when the prefix is full length).
	Addr struct {
		Field  Field
		Prefix netip.Prefix
	}
	// InSet matches an IPv4 address field against a named set.
	InSet struct {
		Field Field
		Set   string
		Neg   bool
	}
	// Port matches the TCP or UDP destination port range.
	Port struct {
		Proto    string // "tcp" or "udp"
		From, To uint16
	}
	// ICMPType matches an ICMP (V6 false) or ICMPv6 type.
	ICMPType struct {
		V6   bool
		Type uint8
	}
	// HopLimit matches the IPv6 hop limit.
	HopLimit struct{ Value uint8 }
	// FibSaddrNotLocal matches packets whose source is not an address of
	// this box.
	FibSaddrNotLocal struct{}
	// FibDaddrLocal matches packets to a unicast address of this box (not
	// a broadcast or multicast one).
	FibDaddrLocal struct{}
	// Limit passes at most Rate packets a second, with a burst.
	Limit struct{ Rate, Burst uint32 }
	// Counter counts in the named counter object.
	Counter struct{ Name string }
	// Log logs with a prefix.
	Log struct{ Prefix string }
	// Vmap dispatches on an IPv4 address field through a verdict map.
	Vmap struct {
		Field Field
		Map   string
	}
	// Masquerade rewrites the source to the outgoing interface's address.
	Masquerade struct{}
	// SNAT rewrites the IPv4 source to Addr.
	SNAT struct{ Addr netip.Addr }
	// Verdict ends the rule: "accept", "drop" or "jump" to Chain.
	Verdict struct {
		Kind  string
		Chain string
	}
)

// Verdicts used by Build.
var (
	Accept = Verdict{Kind: "accept"}
	Drop   = Verdict{Kind: "drop"}
)

// Jump is a jump to chain.
func Jump(chain string) Verdict { return Verdict{Kind: "jump", Chain: chain} }
