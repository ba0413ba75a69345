package firewall

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
)

// basePolicy is a box on eth1 holding router (192.168.1.1) and dns
// (192.168.1.3), with zones added by each case.
func basePolicy(zones ...ZoneInfo) Policy {
	return Policy{
		Interface: "eth1",
		Aliases:   []AliasInfo{{"router", addr("192.168.1.1")}, {"dns", addr("192.168.1.3")}},
		Zones:     zones,
	}
}

// withDHCP is basePolicy holding the dhcp alias (192.168.1.2) too, and lan
// given access.
func withDHCP(access []Access) Policy {
	p := basePolicy(ZoneInfo{Name: "lan", Subnets: subnets("192.168.1.0/24"), Access: access})
	p.Aliases = append(p.Aliases, AliasInfo{"dhcp", addr("192.168.1.2")})
	return p
}

func lan(access ...Access) ZoneInfo {
	return ZoneInfo{Name: "lan", Subnets: subnets("192.168.1.0/24"), Access: access}
}

// chainText renders one chain of r, or "" when r has no such chain.
func chainText(r *Ruleset, name string) string {
	for _, c := range r.Chains {
		if c.Name == name {
			var b strings.Builder
			renderChain(&b, c)
			return b.String()
		}
	}
	return ""
}

func TestBuildEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		chain  string
		want   []string // lines the chain must hold
		not    []string // lines it must not hold
	}{
		{
			name:   "service served on every alias matches @aliases_v4",
			policy: basePolicy(lan(serve("node", true, []netip.Addr{addr("192.168.1.1"), addr("192.168.1.3")}, tcpPort(9100, 9100))...)),
			chain:  "in_lan",
			want:   []string{`ip daddr @aliases_v4 tcp dport 9100 counter name "zone_lan_in" accept comment "node"`},
		},
		{
			name:   "service on an alias another box holds opens nothing here",
			policy: basePolicy(lan()),
			chain:  "in_lan",
			not:    []string{"udp dport 67"},
		},
		{
			name:   "dhcp held here: DISCOVER on the NIC and broadcast in the zone",
			policy: withDHCP(serve("dhcp", false, []netip.Addr{addr("192.168.1.2")}, udpPort(67, 67))),
			chain:  "input",
			want:   []string{`iifname "eth1" ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp dport 67 counter name "link_in" accept comment "dhcp"`},
		},
		{
			name:   "zone allowed dhcp also takes broadcasts",
			policy: withDHCP(serve("dhcp", false, []netip.Addr{addr("192.168.1.2")}, udpPort(67, 67))),
			chain:  "in_lan",
			want: []string{`ip daddr 192.168.1.2 udp dport 67 counter name "zone_lan_in" accept comment "dhcp"`,
				`ip daddr 255.255.255.255 udp dport 67 counter name "zone_lan_in" accept comment "dhcp"`},
		},
		{
			name:   "no zone allows dhcp: no DISCOVER rule",
			policy: withDHCP(nil),
			chain:  "input",
			not:    []string{"udp dport 67"},
		},
		{
			name: "forward to a zone of two subnets: one rule each",
			policy: basePolicy(
				ZoneInfo{Name: "lab", Subnets: subnets("10.1.0.0/24", "10.0.0.0/24")},
				ZoneInfo{Name: "lan", Subnets: subnets("192.168.1.0/24"), Forward: []string{"lab"}}),
			chain: "fwd_lan",
			want: []string{`oifname "eth1" ip daddr 10.0.0.0/24 counter name "zone_lan_fwd" accept comment "lab"`,
				`oifname "eth1" ip daddr 10.1.0.0/24 counter name "zone_lan_fwd" accept comment "lab"`},
			not: []string{"@zones_v4 accept"},
		},
		{
			name:   "upstream means outside every zone",
			policy: basePolicy(ZoneInfo{Name: "lan", Subnets: subnets("192.168.1.0/24"), Forward: []string{"upstream"}}),
			chain:  "fwd_lan",
			want:   []string{`oifname "eth1" ip daddr != @zones_v4 counter name "zone_lan_fwd" accept comment "upstream"`},
		},
		{
			name:   "a closed zone accepts only established traffic",
			policy: basePolicy(lan()),
			chain:  "in_lan",
			want: []string{
				`ct state established,related counter name "zone_lan_in" accept`,
				`ct state invalid counter name "zone_lan_drop" drop`,
				`limit rate 5/second burst 10 packets log prefix "gatewayd drop lan: "`,
				`counter name "zone_lan_drop" drop`,
			},
			not: []string{"dport"},
		},
		{
			name: "an alias outside every zone gets a closed implicit zone",
			policy: func() Policy {
				p := basePolicy(lan(), ZoneInfo{Name: "auto-guest", Subnets: subnets("172.16.0.0/24"), Implicit: true})
				p.Aliases = append(p.Aliases, AliasInfo{"guest", addr("172.16.0.1")})
				return p
			}(),
			chain: "in_auto-guest",
			want:  []string{`counter name "zone_auto-guest_drop" drop`},
			not:   []string{"dport"},
		},
		{
			name: "masquerade when the router role is held here",
			policy: func() Policy {
				p := basePolicy(ZoneInfo{Name: "auto-router", Subnets: subnets("192.168.1.0/24"), Implicit: true})
				p.Masquerade = true
				return p
			}(),
			chain: "srcnat",
			want:  []string{`oifname "eth1" ip daddr != @zones_v4 fib saddr type != local masquerade`},
		},
		{
			name:   "no interface is left alone: what no zone claims is closed",
			policy: basePolicy(ZoneInfo{Name: "auto-router", Subnets: subnets("192.168.1.0/24"), Implicit: true}),
			chain:  "forward",
			want: []string{
				`iifname "eth1" ip saddr vmap @zone_fwd`,
				`iifname "eth1" meta nfproto ipv4 jump fwd_upstream`,
				`ct state established,related ct direction original counter name "closed_fwd" accept`,
				`counter name "closed_drop" drop`,
			},
			not: []string{"iifname !=", `"eth1" accept`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := chainText(Build(tc.policy), tc.chain)
			if text == "" {
				t.Fatalf("no chain %s", tc.chain)
			}
			lines := strings.Split(trimLines(text), "\n")
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("chain %s lacks %q:\n%s", tc.chain, w, text)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(text, n) {
					t.Errorf("chain %s should not contain %q:\n%s", tc.chain, n, text)
				}
			}
		})
	}
}

// TestNoMasquerade: without Masquerade (NAT off, the router role held by
// another box, or no router role) there is no srcnat chain.
func TestNoMasquerade(t *testing.T) {
	p := basePolicy(ZoneInfo{Name: "auto-router", Subnets: subnets("192.168.1.0/24"), Implicit: true})
	if chainText(Build(p), "srcnat") != "" {
		t.Error("srcnat chain present")
	}
}

// TestBuildHeldAliasesOnly: the ruleset holds the aliases of the policy and
// nothing of an alias another box holds (dns, 192.168.1.3, not listed).
func TestBuildHeldAliasesOnly(t *testing.T) {
	p := basePolicy(ZoneInfo{Name: "auto-router", Subnets: subnets("192.168.1.0/24"), Implicit: true})
	p.Aliases = p.Aliases[:1]
	r := Build(p)
	if len(r.Aliases) != 1 || r.Aliases[0].Name != "router" {
		t.Fatalf("aliases = %v, want only router", r.Aliases)
	}
	if strings.Contains(r.Render(), "alias_dns") || strings.Contains(r.Render(), "192.168.1.3") {
		t.Errorf("rendering mentions the alias another box holds:\n%s", r.Render())
	}
}

func TestSetElements(t *testing.T) {
	key := func(e nftables.SetElement) string {
		a, _ := netip.AddrFromSlice(e.Key)
		if e.IntervalEnd {
			return "end " + a.String()
		}
		return a.String()
	}
	for _, tc := range []struct {
		prefixes []string
		want     []string
	}{
		{[]string{"10.0.0.0/24"}, []string{"end 0.0.0.0", "10.0.0.0", "end 10.0.1.0"}},
		{[]string{"10.0.0.0/24", "10.0.1.0/24"}, []string{"end 0.0.0.0", "10.0.0.0", "end 10.0.1.0", "10.0.1.0", "end 10.0.2.0"}},
		{[]string{"0.0.0.0/8", "255.255.255.0/24"}, []string{"0.0.0.0", "end 1.0.0.0", "255.255.255.0"}},
		{[]string{"0.0.0.0/0"}, []string{"0.0.0.0"}},
		{[]string{"192.168.1.1/32"}, []string{"end 0.0.0.0", "192.168.1.1", "end 192.168.1.2"}},
	} {
		s := Set{Name: "s"}
		for _, p := range tc.prefixes {
			s.Elements = append(s.Elements, Element{Prefix: netip.MustParsePrefix(p)})
		}
		var got []string
		for _, e := range setElements(s) {
			got = append(got, key(e))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: elements %v, want %v", tc.prefixes, got, tc.want)
		}
	}
}

// TestMessagesBounded encodes 2,000 zones and checks that every netlink
// message stays far below the 64 KiB an attribute can describe (past it
// elements are silently lost) and that no element is lost in chunking.
func TestMessagesBounded(t *testing.T) {
	r := Build(manyZones(2000, false))
	msgs, err := replaceBatch(r, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if len(m.Data) > 2*elemBudget {
			t.Errorf("%s: message of %d bytes", describeMsg(m), len(m.Data))
		}
	}
	for _, s := range r.Sets {
		els := setElements(s)
		n := 0
		for _, c := range chunkElements(els) {
			n += len(c)
		}
		if n != len(els) {
			t.Errorf("set %s: chunks hold %d elements, want %d", s.Name, n, len(els))
		}
	}
}

// TestBuildGolden pins the rendering of the layouts the site files cannot
// express yet (the controller's goldens cover the rest): a WAN port with a
// static address, a tunnel zone, management and SNAT; the same with the WAN
// address from DHCP.
func TestBuildGolden(t *testing.T) {
	golden(t, "wan.nft", Build(wanPolicy()).Render())
	golden(t, "dhcpwan.nft", Build(dhcpWANPolicy()).Render())
}
