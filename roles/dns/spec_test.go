package dns

import (
	"net/netip"
	"os"
	"testing"

	"gatewayd/config"
)

// loadSite reads testdata/site.toml, after edit (if any) changed its text.
func loadSite(t testing.TB, edits ...func(*config.Config)) *config.Config {
	t.Helper()
	b, err := os.ReadFile("testdata/site.toml")
	must(t, err)
	c, err := config.Parse("testdata/site.toml", b)
	must(t, err)
	for _, e := range edits {
		e(c)
	}
	return c
}

func TestSpecFrom(t *testing.T) {
	sp, ok := specFrom(loadSite(t))
	if !ok {
		t.Fatal("specFrom: the site runs DNS but got no spec")
	}
	if sp.Listen != netip.MustParseAddr("192.168.1.3") || sp.Domain != "home.arpa." || sp.NSName != "dns.home.arpa." || sp.TTL != 60 {
		t.Errorf("spec basics: %+v", sp)
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
	if sp.CNAMEs[0] != (cnameSpec{"files.home.arpa.", "nas.home.arpa."}) || sp.CNAMEs[1] != (cnameSpec{"www.home.arpa.", "www.example.com."}) {
		t.Errorf("cnames = %v", sp.CNAMEs)
	}
	wantAllowed := []string{"10.0.0.1/32", "192.168.1.0/24", "192.168.1.1/32", "192.168.1.2/32", "192.168.1.3/32"}
	if got := prefixStrings(sp.Allowed); !equalStrings(got, wantAllowed) {
		t.Errorf("allowed = %v, want %v", got, wantAllowed)
	}
	if got := prefixStrings(sp.Served); !equalStrings(got, []string{"10.0.0.0/24", "192.168.1.0/24"}) {
		t.Errorf("served = %v", got)
	}
	if len(sp.Forward) != 3 || sp.Forward[1].Domain != "sub.home.arpa." || sp.Forward[1].Servers[0].Port() != 5353 {
		t.Errorf("forward = %+v", sp.Forward)
	}
}

func TestSpecFromStops(t *testing.T) {
	tests := map[string]func(*config.Config){
		"no dns section": func(c *config.Config) { c.DNS = nil },
		"alias elsewhere": func(c *config.Config) {
			c.Alias("dns").Host = "gw2"
		},
	}
	for name, edit := range tests {
		if _, ok := specFrom(loadSite(t, edit)); ok {
			t.Errorf("%s: specFrom says run", name)
		}
	}
}

func TestQualify(t *testing.T) {
	tests := []struct{ in, want, wantTarget string }{
		{"nas", "nas.home.arpa.", "nas.home.arpa."},
		{"NAS.home.arpa", "nas.home.arpa.", "nas.home.arpa."},
		{"printer.lab", "printer.lab.home.arpa.", "printer.lab."},
		{"www.example.com.", "www.example.com.home.arpa.", "www.example.com."},
	}
	for _, tt := range tests {
		if got := qualify(tt.in, "home.arpa."); got != tt.want {
			t.Errorf("qualify(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := target(tt.in, "home.arpa."); got != tt.wantTarget {
			t.Errorf("target(%q) = %q, want %q", tt.in, got, tt.wantTarget)
		}
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
