package firewall

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// Count is one counter's value.
type Count struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// AliasCounters count the traffic to (In) and from (Out) one alias.
type AliasCounters struct {
	Alias string `json:"alias"`
	In    Count  `json:"in"`
	Out   Count  `json:"out"`
}

// ZoneCounters count where a zone's packets went (see the package doc's
// Accounting): accepted to this box (In), forwarded in flows it opened
// (Forward), forwarded as its replies to flows opened elsewhere (Return),
// dropped (Drop). Each packet from the zone is in exactly one of them.
type ZoneCounters struct {
	Zone    string `json:"zone"`
	In      Count  `json:"in"`
	Forward Count  `json:"forward"`
	Return  Count  `json:"return"`
	Drop    Count  `json:"drop"`
}

// Counters are the accounting of table inet gatewayd, for `gatewayd status`.
type Counters struct {
	Aliases []AliasCounters `json:"aliases"`
	// Zones are every zone, then "upstream".
	Zones []ZoneCounters `json:"zones"`
	// Closed counts, like a zone's, what no zone claims: what arrives on
	// interfaces no zone names, and IPv6 on the alias NIC.
	Closed ZoneCounters `json:"closed"`
	// Link counts what is accepted before any zone can claim it: IPv6
	// neighbour and router discovery, MLD queries, DHCP DISCOVERs.
	Link Count `json:"link"`
}

// Counters reads the named counters. Aliases and zones come in the order of
// the last applied ruleset, then any others by name.
func (f *Firewall) Counters() (Counters, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sock == nil {
		return Counters{}, fmt.Errorf("reading counters: the firewall is closed")
	}
	objs, err := f.sock.readObjects()
	if err != nil {
		return Counters{}, fmt.Errorf("reading counters: %w", err)
	}
	values := map[string]Count{}
	for _, o := range objs {
		if o.typ == uint32(nftables.ObjTypeCounter) {
			values[o.name] = Count{Packets: o.packets, Bytes: o.bytes}
		}
	}
	return countersFrom(values, f.last), nil
}

// countersFrom groups counter values by alias and zone, parsing the names
// AliasCounter, ZoneCounter, ClosedCounter and LinkCounter make.
func countersFrom(values map[string]Count, order *Ruleset) Counters {
	aliases := map[string]*AliasCounters{}
	zones := map[string]*ZoneCounters{}
	var aliasOrder, zoneOrder []string
	if order != nil {
		for _, a := range order.Aliases {
			aliasOrder = append(aliasOrder, a.Name)
		}
		for _, z := range order.Zones {
			zoneOrder = append(zoneOrder, z.Name)
		}
		zoneOrder = append(zoneOrder, UpstreamZone)
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	var out Counters
	for _, n := range names {
		v := values[n]
		if n == LinkCounter {
			out.Link = v
		} else if what, ok := strings.CutPrefix(n, "closed_"); ok {
			setZoneCount(&out.Closed, what, v)
		} else if rest, ok := strings.CutPrefix(n, "alias_"); ok {
			name, dir := cutLast(rest)
			a := aliases[name]
			if a == nil {
				a = &AliasCounters{Alias: name}
				aliases[name] = a
				aliasOrder = append(aliasOrder, name)
			}
			switch dir {
			case "in":
				a.In = v
			case "out":
				a.Out = v
			}
		} else if rest, ok := strings.CutPrefix(n, "zone_"); ok {
			name, what := cutLast(rest)
			z := zones[name]
			if z == nil {
				z = &ZoneCounters{Zone: name}
				zones[name] = z
				zoneOrder = append(zoneOrder, name)
			}
			setZoneCount(z, what, v)
		}
	}
	for _, n := range dedupe(aliasOrder) {
		if a := aliases[n]; a != nil {
			out.Aliases = append(out.Aliases, *a)
		}
	}
	for _, n := range dedupe(zoneOrder) {
		if z := zones[n]; z != nil {
			out.Zones = append(out.Zones, *z)
		}
	}
	return out
}

func setZoneCount(z *ZoneCounters, what string, v Count) {
	switch what {
	case "in":
		z.In = v
	case "fwd":
		z.Forward = v
	case "ret":
		z.Return = v
	case "drop":
		z.Drop = v
	}
}

// cutLast splits "name_suffix" at its last underscore.
func cutLast(s string) (string, string) {
	i := strings.LastIndexByte(s, '_')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
