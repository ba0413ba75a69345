package daemon

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gatewayd/aliases"
	"gatewayd/config"
)

// siteText is a two-box site; %s is the DNS alias's host.
const siteText = `
[gateway]
interface = "eth1"
host = "gw1"
state_dir = "/var/lib/gatewayd"

[[alias]]
name = "router"
address = "192.0.2.1/24"
host = "gw1"

[[alias]]
name = "dns"
address = "192.0.2.3/24"
host = "%s"

[router]
alias = "router"

[dns]
alias = "dns"

[zone.lan]
subnets = ["192.0.2.0/24"]
allow = ["dns"]
`

func site(t *testing.T, dnsHost string, edits ...string) *config.Config {
	t.Helper()
	text := fmt.Sprintf(siteText, dnsHost)
	for i := 0; i+1 < len(edits); i += 2 {
		text = strings.Replace(text, edits[i], edits[i+1], 1)
	}
	c, err := config.Parse("t.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUnion(t *testing.T) {
	a := aliases.Alias{Name: "a", Prefix: netip.MustParsePrefix("192.0.2.1/24")}
	b := aliases.Alias{Name: "b", Prefix: netip.MustParsePrefix("192.0.2.2/24")}
	b2 := aliases.Alias{Name: "b2", Prefix: netip.MustParsePrefix("192.0.2.2/25")}
	for _, tc := range []struct {
		prev, next, want []aliases.Alias
	}{
		{nil, []aliases.Alias{a}, []aliases.Alias{a}},
		{[]aliases.Alias{a}, nil, []aliases.Alias{a}},
		{[]aliases.Alias{a, b}, []aliases.Alias{b}, []aliases.Alias{b, a}},
		{[]aliases.Alias{b}, []aliases.Alias{b2}, []aliases.Alias{b2}}, // same address: next wins
	} {
		if got := union(tc.prev, tc.next); !slices.Equal(got, tc.want) {
			t.Errorf("union(%v, %v) = %v, want %v", tc.prev, tc.next, got, tc.want)
		}
	}
}

func TestReleasingKeepsTheMovedAlias(t *testing.T) {
	here, there := site(t, "gw1"), site(t, "gw2")
	if releasing(nil, there, facts{}) != nil {
		t.Error("at start there is nothing to keep")
	}
	if releasing(there, here, facts{}) != nil {
		t.Error("a claim keeps nothing extra")
	}
	got := releasing(here, there, facts{})
	if got == nil || len(got.Aliases) != 2 || len(desire(there, facts{}).Firewall.Aliases) != 1 {
		t.Errorf("a release keeps the DNS alias for the firewall: %v", got)
	}
	if there.Alias("dns").Host != "gw2" {
		t.Error("releasing changed its input")
	}
}

func TestRolePlan(t *testing.T) {
	here, there := site(t, "gw1"), site(t, "gw2")
	moved := site(t, "gw1", `address = "192.0.2.3/24"`, `address = "192.0.2.53/24"`)
	withHost := site(t, "gw1", "[dns]\nalias = \"dns\"", "[dns]\nalias = \"dns\"\n[[dns.host]]\nname = \"nas\"\naddress = \"192.0.2.20\"")
	for _, tc := range []struct {
		name       string
		prev, next *config.Config
		want       string
	}{
		{"start", nil, here, "dns: start on 192.0.2.3 (alias dns)"},
		{"unchanged", here, here, ""},
		{"release", here, there, "dns: stop here; the role lives on host gw2 (alias dns)"},
		{"claim", there, here, "dns: start on 192.0.2.3 (alias dns)"},
		{"elsewhere from the start", nil, there, "# dns runs on host gw2 (alias dns, 192.0.2.3)"},
		{"move", here, moved, "dns: move from 192.0.2.3 to 192.0.2.53 (the new listener opens before the old closes)"},
		{"records", here, withHost, "dns: update hosts (keeps serving)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prev *desired
			if tc.prev != nil {
				prev = desire(tc.prev, facts{})
			}
			got := strings.Join(rolePlan("dns", prev, desire(tc.next, facts{})), "\n")
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSameDesiredAndImmutable(t *testing.T) {
	a, b := site(t, "gw1"), site(t, "gw1")
	b.File = "elsewhere.toml"
	if !reflect.DeepEqual(desire(a, facts{}), desire(b, facts{})) {
		t.Error("the same text from another file is the same desired state")
	}
	if reflect.DeepEqual(desire(a, facts{}), desire(site(t, "gw2"), facts{})) {
		t.Error("a moved alias is a change")
	}
	d := &Daemon{cur: newGeneration(a, facts{})}
	if err := d.checkImmutable(b); err != nil {
		t.Error(err)
	}
	for _, edit := range [][2]string{
		{`interface = "eth1"`, `interface = "eth2"`},
		{`state_dir = "/var/lib/gatewayd"`, `state_dir = "/srv/gatewayd"`},
	} {
		c := site(t, "gw1", edit[0], edit[1], `"eth1:`, `"eth2:`)
		if err := d.checkImmutable(c); err == nil || !strings.Contains(err.Error(), "needs a restart") {
			t.Errorf("%s → %s: %v", edit[0], edit[1], err)
		}
	}
}
