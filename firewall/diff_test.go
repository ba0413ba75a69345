package firewall

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestDiffSSHLoss(t *testing.T) {
	edited := seedPolicy()
	lan := seedZone(&edited, "lan")
	lan.Access = slices.DeleteFunc(lan.Access, func(a Access) bool { return a.Service == "ssh" })
	d := Diff(Build(seedPolicy()), Build(edited))
	golden(t, "diff-ssh.txt", d)
	if !strings.Contains(d, "note: zone lan (192.168.1.0/24) loses ssh (tcp/22) to 192.168.1.1: this may cut your own SSH session") {
		t.Errorf("no SSH warning in:\n%s", d)
	}
}

func TestDiffNewImplicitZone(t *testing.T) {
	d := Diff(Build(seedPolicy()), Build(seedGuest()))
	golden(t, "diff-implicit.txt", d)
	if !strings.Contains(d, "note: zone auto-guest (172.16.0.0/24) is implicit") {
		t.Errorf("no implicit-zone note in:\n%s", d)
	}
	if strings.Contains(d, "SSH") {
		t.Errorf("SSH warning without SSH change:\n%s", d)
	}
	r := Build(seedGuest())
	if n := r.Notes(); len(n) != 1 || !strings.Contains(n[0], "auto-guest") {
		t.Errorf("Notes() = %q", n)
	}
}

func TestDiffEqualAndNil(t *testing.T) {
	r := Build(seedPolicy())
	if d := Diff(r, Build(seedPolicy())); d != "" {
		t.Errorf("equal rulesets differ:\n%s", d)
	}
	if d := Diff(nil, nil); d != "" {
		t.Errorf("Diff(nil, nil) = %q", d)
	}
	d := Diff(nil, r)
	if n := strings.Count(d, "\n+") - 1; n != strings.Count(r.Render(), "\n") { // - the +++ header
		t.Errorf("Diff(nil, r) adds %d lines, want every line of the rendering:\n%s", n, d)
	}
	if !strings.Contains(d, "@@ -0,0 +1,") {
		t.Errorf("Diff(nil, r) hunk header:\n%.200s", d)
	}
	if d := Diff(r, nil); !strings.Contains(d, "loses ssh") {
		t.Errorf("removing the ruleset should warn about SSH:\n%s", d)
	}
}

func TestLineDiff(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"a b c", "a c", " a -b  c"},
		{"a b c", "a x c", " a -b +x  c"},
		{"", "a", "+a"},
		{"a", "", "-a"},
		{"a b c d", "b c d e", "-a  b  c  d +e"},
	} {
		var got []string
		for _, e := range lineDiff(strings.Fields(tc.a), strings.Fields(tc.b)) {
			got = append(got, string(e.op)+e.line)
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("diff %q → %q = %q, want %q", tc.a, tc.b, s, tc.want)
		}
	}
}

// TestLineDiffLarge replaces a whole large middle when the edit search
// would be too long, and still gives a correct edit script.
func TestLineDiffLarge(t *testing.T) {
	var a, b []string
	for i := range 3000 {
		a = append(a, "old"+strings.Repeat("x", i%7)+string(rune('a'+i%26)))
		b = append(b, "new"+string(rune('a'+i%26)))
	}
	edits := lineDiff(a, b)
	var ra, rb []string
	for _, e := range edits {
		if e.op != '+' {
			ra = append(ra, e.line)
		}
		if e.op != '-' {
			rb = append(rb, e.line)
		}
	}
	if strings.Join(ra, "\n") != strings.Join(a, "\n") || strings.Join(rb, "\n") != strings.Join(b, "\n") {
		t.Error("edit script does not rebuild both sides")
	}
}

func TestCountersFromNames(t *testing.T) {
	values := map[string]Count{
		"alias_dns_in":       {1, 10},
		"alias_dns_out":      {2, 20},
		"alias_my_alias_in":  {3, 30},
		"zone_auto-guest_in": {4, 40},
		"zone_lan_fwd":       {5, 50},
		"zone_lan_drop":      {6, 60},
		"zone_upstream_drop": {7, 70},
		"something_else":     {8, 80},
		"zone_lan_ret":       {9, 90},
		"closed_in":          {10, 100},
		"closed_drop":        {11, 110},
		"link_in":            {12, 120},
	}
	order := &Ruleset{Aliases: []AliasInfo{{Name: "my_alias"}, {Name: "dns"}}, Zones: []ZoneInfo{{Name: "lan"}, {Name: "auto-guest"}}}
	c := countersFrom(values, order)
	if len(c.Aliases) != 2 || c.Aliases[0].Alias != "my_alias" || c.Aliases[0].In != (Count{3, 30}) || c.Aliases[1].Out != (Count{2, 20}) {
		t.Errorf("aliases %+v", c.Aliases)
	}
	if len(c.Zones) != 3 || c.Zones[0].Zone != "lan" || c.Zones[0].Forward != (Count{5, 50}) || c.Zones[0].Drop != (Count{6, 60}) ||
		c.Zones[1].Zone != "auto-guest" || c.Zones[1].In != (Count{4, 40}) || c.Zones[2].Zone != "upstream" {
		t.Errorf("zones %+v", c.Zones)
	}
	if c.Zones[0].Return != (Count{9, 90}) || c.Closed.In != (Count{10, 100}) || c.Closed.Drop != (Count{11, 110}) || c.Link != (Count{12, 120}) {
		t.Errorf("returned %+v, closed %+v, link %+v", c.Zones[0].Return, c.Closed, c.Link)
	}
}

// FuzzLineDiff: whatever the inputs, the edit script rebuilds both sides
// and unified output has one line per edit shown.
func FuzzLineDiff(f *testing.F) {
	f.Add("a\nb\nc", "a\nc\nd")
	f.Add("", "x")
	f.Add("same\nsame", "same\nsame")
	f.Fuzz(func(t *testing.T, a, b string) {
		la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
		var ra, rb []string
		for _, e := range lineDiff(la, lb) {
			if e.op != '+' {
				ra = append(ra, e.line)
			}
			if e.op != '-' {
				rb = append(rb, e.line)
			}
		}
		if strings.Join(ra, "\n") != a || strings.Join(rb, "\n") != b {
			t.Fatalf("edit script does not rebuild %q → %q", a, b)
		}
		_ = unified(la, lb)
	})
}

// TestDiffManagementLoss: a zone losing any management service (the site's
// list, or the SSH port whatever its name) is warned about, whether it
// reached it on an alias, on the box's own addresses (Manage) or through an
// interface it names; a service not on the list is not.
func TestDiffManagementLoss(t *testing.T) {
	old := wanPolicy()
	old.Zones = append(old.Zones, ZoneInfo{Name: "iot", Subnets: subnets("10.20.0.0/16"),
		Access: serve("metrics", false, []netip.Addr{seedRouter}, tcpPort(9100, 9100))})
	edited := wanPolicy()
	lan := seedZone(&edited, "lan")
	lan.Manage = nil
	lan.Access = slices.DeleteFunc(slices.Clone(lan.Access), func(a Access) bool { return a.Service == "ping" })
	vpn := seedZone(&edited, "vpn")
	vpn.Access = slices.DeleteFunc(slices.Clone(vpn.Access), func(a Access) bool { return a.Service == "ssh" })
	d := Diff(Build(old), Build(edited))
	for _, want := range []string{
		"note: zone lan (192.168.1.0/24) loses ssh (tcp/22) to the box's own addresses: this may cut your own SSH session",
		"note: zone lan (192.168.1.0/24) loses ping (icmp) to the box's own addresses: it is a management service",
		"note: zone lan (192.168.1.0/24) loses ping (icmp) to 10.0.0.1: it is a management service",
		"note: zone vpn (interface wg0) loses ssh (tcp/22) to 192.168.1.1: this may cut your own SSH session",
	} {
		if !strings.Contains(d, want+"\n") {
			t.Errorf("no %q in:\n%s", want, d)
		}
	}
	for _, l := range strings.Split(d, "\n") {
		if strings.HasPrefix(l, "note:") && (strings.Contains(l, "metrics") || strings.Contains(l, "zone lab")) {
			t.Errorf("a note about a service not on the management list, or a zone that lost nothing: %s", l)
		}
	}
	// Renaming a zone is no excuse: lan's subnet in a zone of another name
	// with the same access loses nothing.
	renamed := wanPolicy()
	seedZone(&renamed, "lan").Name = "office"
	if d := Diff(Build(wanPolicy()), Build(renamed)); strings.Contains(d, "loses") {
		t.Errorf("renaming lan warns:\n%s", d)
	}
}

func TestPortRangeString(t *testing.T) {
	for p, want := range map[PortRange]string{tcpPort(22, 22): "tcp/22", udpPort(8000, 8080): "udp/8000-8080", icmp: "icmp"} {
		if got := p.String(); got != want {
			t.Errorf("%+v prints %q, want %q", p, got, want)
		}
	}
}
