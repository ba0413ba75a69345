package firewall

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
)

const baseConfig = `
[gateway]
interface = "eth1"
host = "gw1"

[[alias]]
name = "router"
address = "192.168.1.1/24"

[[alias]]
name = "dns"
address = "192.168.1.3/24"
`

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
		config string
		chain  string
		want   []string // lines the chain must hold
		not    []string // lines it must not hold
	}{
		{
			name:   "service served on every alias matches @aliases_v4",
			config: baseConfig + "[service.node]\nports = [\"tcp/9100\"]\n[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\nallow = [\"node\"]\n",
			chain:  "in_lan",
			want:   []string{`ip daddr @aliases_v4 tcp dport 9100 accept comment "node"`},
		},
		{
			name:   "service on an alias another box holds opens nothing here",
			config: baseConfig + "[[alias]]\nname = \"dhcp\"\naddress = \"192.168.1.2/24\"\nhost = \"gw2\"\n[dhcp]\nalias = \"dhcp\"\n[[dhcp.pool]]\nrange = \"192.168.1.100-192.168.1.110\"\n[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\nallow = [\"dhcp\"]\n",
			chain:  "in_lan",
			not:    []string{"udp dport 67"},
		},
		{
			name:   "dhcp held here: DISCOVER on the NIC and broadcast in the zone",
			config: baseConfig + "[[alias]]\nname = \"dhcp\"\naddress = \"192.168.1.2/24\"\n[dhcp]\nalias = \"dhcp\"\n[[dhcp.pool]]\nrange = \"192.168.1.100-192.168.1.110\"\n[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\nallow = [\"dhcp\"]\n",
			chain:  "input",
			want:   []string{`iifname "eth1" ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp dport 67 accept comment "dhcp"`},
		},
		{
			name:   "zone allowed dhcp also takes broadcasts",
			config: baseConfig + "[[alias]]\nname = \"dhcp\"\naddress = \"192.168.1.2/24\"\n[dhcp]\nalias = \"dhcp\"\n[[dhcp.pool]]\nrange = \"192.168.1.100-192.168.1.110\"\n[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\nallow = [\"dhcp\"]\n",
			chain:  "in_lan",
			want:   []string{`ip daddr 192.168.1.2 udp dport 67 accept comment "dhcp"`, `ip daddr 255.255.255.255 udp dport 67 accept comment "dhcp"`},
		},
		{
			name:   "no zone allows dhcp: no DISCOVER rule",
			config: baseConfig + "[[alias]]\nname = \"dhcp\"\naddress = \"192.168.1.2/24\"\n[dhcp]\nalias = \"dhcp\"\n[[dhcp.pool]]\nrange = \"192.168.1.100-192.168.1.110\"\n[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\n",
			chain:  "input",
			not:    []string{"udp dport 67"},
		},
		{
			name:   "forward to a zone of two subnets: one rule each",
			config: baseConfig + "[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\nforward = [\"lab\"]\n[zone.lab]\nsubnets = [\"10.1.0.0/24\", \"10.0.0.0/24\"]\n",
			chain:  "fwd_lan",
			want:   []string{`ip daddr 10.0.0.0/24 accept comment "lab"`, `ip daddr 10.1.0.0/24 accept comment "lab"`},
			not:    []string{"@zones_v4 accept"},
		},
		{
			name:   "upstream means outside every zone",
			config: baseConfig + "[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\nforward = [\"upstream\"]\n",
			chain:  "fwd_lan",
			want:   []string{`ip daddr != @zones_v4 accept comment "upstream"`},
		},
		{
			name:   "a closed zone accepts only established traffic",
			config: baseConfig + "[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\n",
			chain:  "in_lan",
			want: []string{
				`counter name "zone_lan_in" ct state established,related accept`,
				`limit rate 5/second burst 10 packets log prefix "gatewayd drop lan: "`,
				`counter name "zone_lan_drop" drop`,
			},
			not: []string{"dport"},
		},
		{
			name:   "an alias outside every zone gets a closed implicit zone",
			config: baseConfig + "[[alias]]\nname = \"guest\"\naddress = \"172.16.0.1/24\"\n[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\n",
			chain:  "in_auto-guest",
			want:   []string{`counter name "zone_auto-guest_drop" drop`},
			not:    []string{"dport"},
		},
		{
			name:   "masquerade when the router role is held here",
			config: baseConfig + "[router]\nalias = \"router\"\nupstream = \"192.168.1.254\"\nmasquerade = true\n",
			chain:  "srcnat",
			want:   []string{"ip saddr @zones_v4 ip daddr != @zones_v4 fib saddr type != local masquerade"},
		},
		{
			name:   "only other interfaces are left alone",
			config: baseConfig,
			chain:  "forward",
			want:   []string{`iifname != "eth1" accept`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := chainText(Build(parseConfig(t, tc.config)), tc.chain)
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

func TestNoMasquerade(t *testing.T) {
	for name, cfg := range map[string]string{
		"masquerade off":     baseConfig + "[router]\nalias = \"router\"\nupstream = \"192.168.1.254\"\n",
		"router held by gw2": strings.Replace(baseConfig, "name = \"router\"\naddress = \"192.168.1.1/24\"", "name = \"router\"\naddress = \"192.168.1.1/24\"\nhost = \"gw2\"", 1) + "[router]\nalias = \"router\"\nupstream = \"192.168.1.254\"\nmasquerade = true\n",
		"no router role":     baseConfig,
	} {
		if chainText(Build(parseConfig(t, cfg)), "srcnat") != "" {
			t.Errorf("%s: srcnat chain present", name)
		}
	}
}

func TestBuildHeldAliasesOnly(t *testing.T) {
	cfg := strings.Replace(baseConfig, "name = \"dns\"\naddress = \"192.168.1.3/24\"", "name = \"dns\"\naddress = \"192.168.1.3/24\"\nhost = \"gw2\"", 1)
	r := Build(parseConfig(t, cfg))
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
	r := Build(parseConfig(t, manyZones(2000)))
	msgs, err := batch(r, func(cc *nftables.Conn) error { return queueReplace(cc, r, false) })
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
