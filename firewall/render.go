package firewall

import (
	"fmt"
	"strconv"
	"strings"
)

// Render prints the ruleset as nft syntax that `nft -f` loads. It is the
// ruleset's identity: Diff compares renderings, and Firewall.Set skips the
// kernel read only when the rendering equals the one it applied last and
// the nftables generation is still the one it saw then (nothing has been
// committed since, by anyone); otherwise it reads the table back and
// compares each rule's fingerprint.
//
// Loading it with `nft -f` into a namespace that has no table inet gatewayd
// gives the same table Firewall.Set builds; over an existing table nft would
// add to it, so precede it with "table inet gatewayd; delete table inet
// gatewayd" to replace it (which, unlike Set, resets the counters).
func (r *Ruleset) Render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s {\n", Family, Table)
	for _, name := range r.Counters {
		fmt.Fprintf(&b, "\tcounter %s { }\n", name)
	}
	if len(r.Counters) > 0 {
		b.WriteString("\n")
	}
	for _, s := range r.Sets {
		renderSet(&b, s)
		b.WriteString("\n")
	}
	for i, c := range r.Chains {
		if i > 0 {
			b.WriteString("\n")
		}
		renderChain(&b, c)
	}
	b.WriteString("}\n")
	return b.String()
}

func renderSet(b *strings.Builder, s Set) {
	kind, typ := "set", "ipv4_addr"
	if s.Map {
		kind, typ = "map", "ipv4_addr : verdict"
	}
	fmt.Fprintf(b, "\t%s %s {\n\t\ttype %s\n\t\tflags interval\n", kind, s.Name, typ)
	if len(s.Elements) > 0 {
		b.WriteString("\t\telements = {")
		for i, e := range s.Elements {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n\t\t\t")
			if e.Prefix.IsSingleIP() {
				b.WriteString(e.Prefix.Addr().String())
			} else {
				b.WriteString(e.Prefix.String())
			}
			if s.Map {
				b.WriteString(" : ")
				b.WriteString(Jump(e.Jump).String())
			}
		}
		b.WriteString("\n\t\t}\n")
	}
	b.WriteString("\t}\n")
}

func renderChain(b *strings.Builder, c Chain) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if c.Base() {
		fmt.Fprintf(b, "\t\ttype %s hook %s priority %s; policy %s;\n", c.Type, c.Hook, priorityName(c), c.Policy)
	}
	for _, r := range c.Rules {
		b.WriteString("\t\t")
		b.WriteString(r.String())
		b.WriteString("\n")
	}
	b.WriteString("\t}\n")
}

// priorityName prints the standard priorities by name, as nft lists them.
func priorityName(c Chain) string {
	switch {
	case c.Type == "filter" && c.Priority == 0:
		return "filter"
	case c.Type == "nat" && c.Hook == "postrouting" && c.Priority == 100:
		return "srcnat"
	}
	return strconv.Itoa(c.Priority)
}

// String prints the rule as one line of nft syntax.
func (r Rule) String() string {
	parts := make([]string, 0, len(r.Exprs)+1)
	for _, e := range r.Exprs {
		parts = append(parts, e.String())
	}
	if r.Comment != "" {
		parts = append(parts, "comment "+strconv.Quote(r.Comment))
	}
	return strings.Join(parts, " ")
}

func (IifLo) String() string       { return `iif "lo"` }
func (OifLo) String() string       { return `oif "lo"` }
func (e IifName) String() string   { return "iifname " + strconv.Quote(e.Name) }
func (e OifName) String() string   { return "oifname " + strconv.Quote(e.Name) }
func (NfProtoIPv4) String() string { return "meta nfproto ipv4" }
func (CtOriginal) String() string  { return "ct direction original" }

func (e CtState) String() string {
	var names []string
	for _, s := range []struct {
		bit  uint32
		name string
	}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}} {
		if e.Mask&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	return "ct state " + strings.Join(names, ",")
}

func (e Addr) String() string {
	fam := "ip"
	if e.Prefix.Addr().Is6() {
		fam = "ip6"
	}
	val := e.Prefix.String()
	if e.Prefix.IsSingleIP() {
		val = e.Prefix.Addr().String()
	}
	return fmt.Sprintf("%s %s %s", fam, e.Field, val)
}

func (e InSet) String() string {
	return fmt.Sprintf("ip %s %s@%s", e.Field, neg(e.Neg), e.Set)
}

func neg(n bool) string {
	if n {
		return "!= "
	}
	return ""
}

func (e Port) String() string {
	if e.From == e.To {
		return fmt.Sprintf("%s dport %d", e.Proto, e.From)
	}
	return fmt.Sprintf("%s dport %d-%d", e.Proto, e.From, e.To)
}

func (e ICMPType) String() string {
	if e.V6 {
		return "icmpv6 type " + icmpName(icmpv6Names, e.Type)
	}
	return "icmp type " + icmpName(icmpNames, e.Type)
}

// ICMP type numbers and the names nft gives them.
const (
	ICMPEchoRequest   = 8
	ICMPRedirect      = 5
	ICMPv6EchoRequest = 128
	ICMPv6MLDQuery    = 130
	ICMPv6RouterSol   = 133
	ICMPv6RouterAdv   = 134
	ICMPv6NeighSol    = 135
	ICMPv6NeighAdv    = 136
	ICMPv6NDRedirect  = 137
	ndHopLimit        = 255
	dropLogRate       = 5
	dropLogBurst      = 10
	counterTypeNumber = 1 // NFT_OBJECT_COUNTER
)

var icmpNames = map[uint8]string{ICMPEchoRequest: "echo-request", ICMPRedirect: "redirect"}

var icmpv6Names = map[uint8]string{
	ICMPv6EchoRequest: "echo-request",
	ICMPv6MLDQuery:    "mld-listener-query",
	ICMPv6RouterSol:   "nd-router-solicit",
	ICMPv6RouterAdv:   "nd-router-advert",
	ICMPv6NeighSol:    "nd-neighbor-solicit",
	ICMPv6NeighAdv:    "nd-neighbor-advert",
	ICMPv6NDRedirect:  "nd-redirect",
}

func icmpName(names map[uint8]string, t uint8) string {
	if n, ok := names[t]; ok {
		return n
	}
	return strconv.Itoa(int(t))
}

func (e HopLimit) String() string       { return fmt.Sprintf("ip6 hoplimit %d", e.Value) }
func (FibSaddrNotLocal) String() string { return "fib saddr type != local" }
func (FibDaddrLocal) String() string    { return "fib daddr type local" }
func (e Limit) String() string {
	return fmt.Sprintf("limit rate %d/second burst %d packets", e.Rate, e.Burst)
}
func (e Counter) String() string  { return "counter name " + strconv.Quote(e.Name) }
func (e Log) String() string      { return "log prefix " + strconv.Quote(e.Prefix) }
func (e Vmap) String() string     { return fmt.Sprintf("ip %s vmap @%s", e.Field, e.Map) }
func (Masquerade) String() string { return "masquerade" }
func (e SNAT) String() string     { return "snat ip to " + e.Addr.String() }

func (e Verdict) String() string {
	if e.Kind == "jump" {
		return "jump " + e.Chain
	}
	return e.Kind
}
