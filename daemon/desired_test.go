package daemon

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gatewayd/config"
	"gatewayd/firewall"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func load(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFirewallGoldens: the file's zones and services, resolved by desire
// and built by the firewall, render byte for byte as the goldens.
func TestFirewallGoldens(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"seed", "../etc/gateway.toml"},
		{"nozones", "testdata/firewall/nozones.toml"},
		{"outside", "testdata/firewall/outside.toml"},
		{"many", "testdata/firewall/many.toml"},
		{"zones20", "testdata/firewall/zones20.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := desire(load(t, tc.config), facts{}).Firewall.Render()
			path := filepath.Join("testdata", "firewall", tc.name+".nft")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
			}
		})
	}
}

// TestPolicy checks the derivations the firewall no longer makes itself.
func TestPolicy(t *testing.T) {
	seed := load(t, "../etc/gateway.toml")
	pol := policy(seed, seed.Holds, facts{})
	if !pol.Masquerade {
		t.Error("the seed masquerades")
	}
	byName := map[string]firewall.ZoneInfo{}
	for _, z := range pol.Zones {
		byName[z.Name] = z
	}
	for _, a := range byName["lan"].Access {
		if a.Service == "dns" && (a.Addr != netip.MustParseAddr("192.168.1.3") || a.Every) {
			t.Errorf("dns access %+v, want on the dns alias only", a)
		}
	}

	// A service with no alias opens on every held alias, one Access each.
	site := load(t, "testdata/dnssite.toml")
	var ping []string
	for _, z := range policy(site, site.Holds, facts{}).Zones {
		for _, a := range z.Access {
			if a.Service == "ping" && a.Every {
				ping = append(ping, z.Name+"→"+a.Addr.String())
			}
		}
	}
	if got := strings.Join(ping, " "); got != "lab→192.168.1.1 lab→192.168.1.2 lab→192.168.1.3 lab→10.0.0.1" {
		t.Errorf("ping access: %s", got)
	}

	// Elsewhere: the alias is left out, and so are the services on it.
	elsewhere := func(c *config.Config, alias string) *config.Config {
		cp := *c
		cp.Aliases = slices.Clone(c.Aliases)
		for i := range cp.Aliases {
			if cp.Aliases[i].Name == alias {
				cp.Aliases[i].Host = "gw2"
			}
		}
		return &cp
	}
	noDNS := elsewhere(seed, "dns")
	p := policy(noDNS, noDNS.Holds, facts{})
	for _, a := range p.Aliases {
		if a.Name == "dns" {
			t.Error("an alias held elsewhere is in the policy")
		}
	}
	for _, z := range p.Zones {
		for _, a := range z.Access {
			if a.Service == "dns" {
				t.Errorf("zone %s reaches dns here though its alias is on gw2", z.Name)
			}
		}
	}
	noRouter := elsewhere(seed, "router")
	if policy(noRouter, noRouter.Holds, facts{}).Masquerade {
		t.Error("masquerade without the router alias")
	}
	if routerConfig(noRouter) != nil {
		t.Error("router config while the router alias is elsewhere")
	}
	noNAT := *seed
	r := *seed.Router
	r.Masquerade = false
	noNAT.Router = &r
	if policy(&noNAT, noNAT.Holds, facts{}).Masquerade {
		t.Error("masquerade = false still masquerades")
	}
	noRole := *seed
	noRole.Router = nil
	if policy(&noRole, noRole.Holds, facts{}).Masquerade || routerConfig(&noRole) != nil {
		t.Error("no [router] section still routes")
	}
}

func TestRouterConfig(t *testing.T) {
	c := load(t, "../etc/gateway.toml")
	rc := routerConfig(c)
	if rc == nil || rc.Interface != "eth1" {
		t.Fatalf("router config %+v", rc)
	}
	var got []string
	for _, r := range rc.Routes {
		got = append(got, r.String())
	}
	if len(got) == 0 || got[0] != "default via 192.168.1.254 dev eth1" {
		t.Errorf("routes %v, want the default route first", got)
	}
}

func TestDNSConfig(t *testing.T) {
	c := load(t, "testdata/dnssite.toml")
	sp := desire(c, facts{}).DNS
	if sp == nil {
		t.Fatal("the site runs DNS but got no config")
	}
	if sp.Listen != netip.MustParseAddr("192.168.1.3") || sp.Domain != "home.arpa." || sp.NSName != "dns.home.arpa." || sp.TTL != 60 {
		t.Errorf("config basics: %+v", sp)
	}
	names := map[string][]string{}
	for _, n := range sp.Names {
		names[n.Name] = append(names[n.Name], n.Addr.String())
	}
	want := map[string][]string{
		"nas.home.arpa.":       {"192.168.1.20", "fd00::20"},
		"deep.sub2.home.arpa.": {"192.168.1.21"},
		"far.home.arpa.":       {"172.16.5.5"},
		"printer.home.arpa.":   {"192.168.1.10"},
		"router.home.arpa.":    {"192.168.1.1"},
		"dhcp.home.arpa.":      {"192.168.1.2"},
		"dns.home.arpa.":       {"192.168.1.3"},
		"lab.home.arpa.":       {"10.0.0.1"},
	}
	for name, addrs := range want {
		if got := names[name]; len(got) != len(addrs) || (len(got) > 0 && got[0] != addrs[0]) {
			t.Errorf("names[%s] = %v, want %v", name, got, addrs)
		}
	}
	if len(names) != len(want) {
		t.Errorf("names = %v", names)
	}
	if sp.CNAMEs[0].Name != "files.home.arpa." || sp.CNAMEs[0].Target != "nas.home.arpa." ||
		sp.CNAMEs[1].Name != "www.home.arpa." || sp.CNAMEs[1].Target != "www.example.com." {
		t.Errorf("cnames = %v", sp.CNAMEs)
	}
	if got := prefixStrings(sp.Allowed); got != "10.0.0.1/32 192.168.1.0/24 192.168.1.1/32 192.168.1.2/32 192.168.1.3/32" {
		t.Errorf("allowed = %v", got)
	}
	if got := prefixStrings(sp.Served); got != "10.0.0.0/24 192.168.1.0/24" {
		t.Errorf("served = %v", got)
	}
	if len(sp.Forward) != 3 || sp.Forward[1].Domain != "sub.home.arpa." || sp.Forward[1].Servers[0].Port() != 5353 {
		t.Errorf("forward = %+v", sp.Forward)
	}

	logging := *c
	d := *c.DNS
	d.LogQueries = true
	logging.DNS = &d
	if !desire(&logging, facts{}).DNS.LogQueries {
		t.Error("[dns] log_queries does not reach the role")
	}

	// No DNS here: no [dns] section, or its alias on another host.
	noDNS := *c
	noDNS.DNS = nil
	if desire(&noDNS, facts{}).DNS != nil {
		t.Error("no [dns] section: still a DNS config")
	}
	moved := *c
	moved.Aliases = slices.Clone(c.Aliases)
	for i := range moved.Aliases {
		if moved.Aliases[i].Name == "dns" {
			moved.Aliases[i].Host = "gw2"
		}
	}
	if desire(&moved, facts{}).DNS != nil {
		t.Error("DNS alias elsewhere: still a DNS config")
	}
}

func TestDHCPConfig(t *testing.T) {
	c := load(t, "../etc/gateway.toml")
	dc := desire(c, facts{}).DHCP
	if dc == nil || dc.Interface != "eth1" || dc.Server != netip.MustParsePrefix("192.168.1.2/24") || !dc.Authoritative {
		t.Fatalf("dhcp config %+v", dc)
	}
	p := dc.Pools[0]
	if p.Router != netip.MustParseAddr("192.168.1.1") || len(p.DNS) != 1 || p.DNS[0] != netip.MustParseAddr("192.168.1.3") ||
		p.Subnet != netip.MustParsePrefix("192.168.1.0/24") || p.Relayed || p.LeaseTime == 0 || p.Domain == "" {
		t.Errorf("pool %+v", p)
	}
	if len(dc.Static) == 0 || dc.Static[0].Hostname != "printer" {
		t.Errorf("static %+v", dc.Static)
	}
}

func prefixStrings(ps []netip.Prefix) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, " ")
}

// TestManagement: the NIC's own addresses keep the management services from
// the zone that holds them, or from a closed zone of their own when no zone
// does; the file's management_zones replaces that default.
func TestManagement(t *testing.T) {
	seed := load(t, "../etc/gateway.toml")
	managed := func(f facts) map[string]string {
		out := map[string]string{}
		for _, z := range policy(seed, seed.Holds, f).Zones {
			var ports []string
			for _, m := range z.Manage {
				ports = append(ports, m.Service+"="+m.Port.Proto)
			}
			if len(ports) > 0 {
				out[z.Name] = strings.Join(ports, " ") + " " + prefixStrings(z.Subnets)
			}
		}
		return out
	}
	if got := managed(facts{}); len(got) != 0 {
		t.Errorf("no own address, no management: %v", got)
	}
	if got := managed(facts{Own: []netip.Prefix{netip.MustParsePrefix("192.168.1.250/24")}}); len(got) != 1 || got["lan"] != "ssh=tcp ping=icmp 192.168.1.0/24" {
		t.Errorf("primary in lan: %v", got)
	}
	if got := managed(facts{Own: []netip.Prefix{netip.MustParsePrefix("172.20.0.5/16")}}); len(got) != 1 || got["auto-own"] != "ssh=tcp ping=icmp 172.20.0.0/16" {
		t.Errorf("primary outside every zone: %v", got)
	}
	r := desire(seed, facts{Own: []netip.Prefix{netip.MustParsePrefix("192.168.1.250/24")}}).Firewall.Render()
	if !strings.Contains(r, "fib daddr type local") {
		t.Errorf("the ruleset has no rule for the NIC's own addresses:\n%s", r)
	}
	if got := closedLinks(seed, facts{Links: []string{"eth0", "eth1", "wg0"}}); strings.Join(got, " ") != "eth0 wg0" {
		t.Errorf("closed interfaces %v, want eth0 wg0", got)
	}
}
