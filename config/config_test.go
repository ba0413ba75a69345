package config

import (
	"net/netip"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestGatewayDefaults(t *testing.T) {
	c := mustParse(t, baseDoc)
	g := c.Gateway
	if g.Host != "gw1" || g.StateDir != DefaultStateDir || g.ControlSocket != DefaultControlSocket {
		t.Errorf("gateway: %+v", g)
	}
	if g.ProbeTimeout != 500*time.Millisecond || g.AnnounceCount != 3 || g.AnnounceInterval != 500*time.Millisecond {
		t.Errorf("probe/announce defaults: %+v", g)
	}
	if c.File != "t.toml" {
		t.Errorf("File = %q", c.File)
	}

	// Zero is a setting, not "unset": "0s" turns probing off, 0 announcements none.
	c = mustParse(t, edit(t, baseDoc, "host = \"gw1\"\n", "host = \"gw1\"\nprobe_timeout = \"0s\"\nannounce_count = 0\n"))
	if c.Gateway.ProbeTimeout != 0 || c.Gateway.AnnounceCount != 0 {
		t.Errorf("explicit zero overridden by defaults: probe_timeout %v, announce_count %d", c.Gateway.ProbeTimeout, c.Gateway.AnnounceCount)
	}

	c = mustParse(t, edit(t, baseDoc, "host = \"gw1\"\n", "host = \"gw1\"\nlog_level = \"DEBUG\"\nlog_format = \"json\"\nstate_dir = \"/srv/gw\"\n"))
	if g := c.Gateway; g.LogLevel != "DEBUG" || g.LogFormat != "json" || g.StateDir != "/srv/gw" {
		t.Errorf("gateway settings not kept: %+v", g)
	}

	c = mustParse(t, edit(t, baseDoc, "host = \"gw1\"\n", ""))
	if want, _ := os.Hostname(); c.Gateway.Host != want {
		t.Errorf("default host = %q, want the hostname %q", c.Gateway.Host, want)
	}
}

func TestLabels(t *testing.T) {
	labels := func(c *Config) []string {
		var out []string
		for _, a := range c.Aliases {
			out = append(out, a.Label)
		}
		return out
	}
	c := mustParse(t, baseDoc)
	if got, want := labels(c), []string{"eth1:0", "eth1:1", "eth1:2", "eth1:3"}; !slices.Equal(got, want) {
		t.Errorf("default labels %q, want %q", got, want)
	}
	// An explicit label does not renumber the others: n is the position in the file.
	c = mustParse(t, edit(t, baseDoc, "address = \"192.168.1.2/24\"\n", "address = \"192.168.1.2/24\"\nlabel = \"eth1:dhcp\"\n"))
	if got, want := labels(c), []string{"eth1:0", "eth1:dhcp", "eth1:2", "eth1:3"}; !slices.Equal(got, want) {
		t.Errorf("labels %q, want %q", got, want)
	}
	for i, a := range c.Aliases {
		if a.DefaultLabel != (i != 1) {
			t.Errorf("alias %s: DefaultLabel = %v", a.Name, a.DefaultLabel)
		}
	}
	// 15 bytes is allowed.
	c = mustParse(t, edit(t, baseDoc, `interface = "eth1"`, `interface = "enp0s20f0u10u"`))
	if c.Aliases[0].Label != "enp0s20f0u10u:0" {
		t.Errorf("label %q", c.Aliases[0].Label)
	}
}

func TestDHCPDefaults(t *testing.T) {
	c := mustParse(t, baseDoc)
	d := c.DHCP
	if d.LeaseTime != 12*time.Hour || d.DeclineTime != 24*time.Hour || d.OfferTime != time.Minute || !d.Authoritative {
		t.Errorf("dhcp defaults: %+v", d)
	}
	for i, p := range d.Pools {
		if p.LeaseTime != 12*time.Hour || p.RenewTime != 6*time.Hour || p.RebindTime != 10*time.Hour+30*time.Minute {
			t.Errorf("pool %d times: lease %v T1 %v T2 %v", i, p.LeaseTime, p.RenewTime, p.RebindTime)
		}
	}

	// [dhcp] lease_time flows into the pools; a pool's own lease_time wins; T1
	// and T2 follow the pool's lease unless set.
	c = mustParse(t, edit(t, baseDoc,
		"alias = \"dhcp\"\n", "alias = \"dhcp\"\nlease_time = \"2d\"\nauthoritative = false\n",
		"router = \"lab\"\n", "router = \"lab\"\nlease_time = \"1h\"\nrenew_time = \"20m\"\n"))
	p0, p1 := c.DHCP.Pools[0], c.DHCP.Pools[1]
	if p0.LeaseTime != 48*time.Hour || p0.RenewTime != 24*time.Hour || p0.RebindTime != 42*time.Hour {
		t.Errorf("pool 0: lease %v T1 %v T2 %v, want 48h 24h 42h", p0.LeaseTime, p0.RenewTime, p0.RebindTime)
	}
	if p1.LeaseTime != time.Hour || p1.RenewTime != 20*time.Minute || p1.RebindTime != 52*time.Minute+30*time.Second {
		t.Errorf("pool 1: lease %v T1 %v T2 %v, want 1h 20m 52m30s", p1.LeaseTime, p1.RenewTime, p1.RebindTime)
	}
	if c.DHCP.Authoritative {
		t.Error("authoritative = false ignored")
	}
}

func TestDomainInheritance(t *testing.T) {
	domains := func(c *Config) []string { return []string{c.DHCP.Pools[0].Domain, c.DHCP.Pools[1].Domain} }
	for _, tc := range []struct {
		name    string
		edits   []string
		dns     string
		domains []string
	}{
		{"default", nil, DefaultDomain, []string{DefaultDomain, DefaultDomain}},
		{"from [dns]", []string{"alias = \"dns\"\n", "alias = \"dns\"\ndomain = \"example.lan\"\n"}, "example.lan", []string{"example.lan", "example.lan"}},
		{"pool's own", []string{"router = \"lab\"\n", "router = \"lab\"\ndomain = \"lab.example\"\n"}, DefaultDomain, []string{DefaultDomain, "lab.example"}},
		{"no dns role", []string{"[dns]\nalias = \"dns\"\nupstreams = [\"192.168.1.254\"]\n", "", `dns = ["dns"]`, `dns = ["192.168.1.3"]`, `allow = ["dhcp", "dns", "ssh"]`, `allow = ["dhcp", "ssh"]`, `allow = ["dns"]`, `allow = []`}, "", []string{"", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, edit(t, baseDoc, tc.edits...))
			if c.DNS != nil && c.DNS.Domain != tc.dns || c.DNS == nil && tc.dns != "" {
				t.Errorf("dns domain: %+v", c.DNS)
			}
			if got := domains(c); !slices.Equal(got, tc.domains) {
				t.Errorf("pool domains %q, want %q", got, tc.domains)
			}
		})
	}
}

func TestDNSDefaults(t *testing.T) {
	c := mustParse(t, edit(t, baseDoc, `upstreams = ["192.168.1.254"]`, `upstreams = ["192.168.1.254", "192.168.1.253:5353"]`,
		"", "\n[[dns.forward]]\ndomain = \"corp.example\"\nservers = [\"10.0.0.53\"]\n"))
	d := c.DNS
	if d.Domain != DefaultDomain || d.LocalTTL != time.Minute || d.Timeout != 4*time.Second || d.MaxFlight != 1024 {
		t.Errorf("dns defaults: %+v", d)
	}
	if d.Cache.Size != 10000 || d.Cache.MaxTTL != 24*time.Hour || d.Cache.NegTTL != time.Hour || d.Cache.MinTTL != 0 || !d.Rebind {
		t.Errorf("dns cache/rebind defaults: %+v %+v", d.Cache, d.Rebind)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("192.168.1.254:53"), netip.MustParseAddrPort("192.168.1.253:5353")}
	if !slices.Equal(d.Upstreams, want) {
		t.Errorf("upstreams %v, want %v", d.Upstreams, want)
	}
	if got := d.Forward[0].Servers; len(got) != 1 || got[0] != netip.MustParseAddrPort("10.0.0.53:53") {
		t.Errorf("forward servers %v", got)
	}
}

func TestBuiltinServices(t *testing.T) {
	c := mustParse(t, baseDoc)
	for _, tc := range []struct {
		name, alias string
		ports       []PortSpec
	}{
		{"dhcp", "dhcp", []PortSpec{{"udp", 67, 67}}},
		{"dns", "dns", []PortSpec{{"udp", 53, 53}, {"tcp", 53, 53}}},
		{"ssh", "router", []PortSpec{{"tcp", 22, 22}}},
		{"ping", "", []PortSpec{{Proto: "icmp"}}},
	} {
		s := c.Services[tc.name]
		if s == nil {
			t.Errorf("no built-in service %s", tc.name)
			continue
		}
		if s.Name != tc.name || s.Alias != tc.alias || !s.Builtin || !slices.Equal(s.Ports, tc.ports) {
			t.Errorf("service %s = %+v, want alias %q ports %v", tc.name, s, tc.alias, tc.ports)
		}
	}

	// The file may redefine a built-in and add its own.
	c = mustParse(t, edit(t, baseDoc, "", "\n[service.ssh]\nports = [\"tcp/2222\"]\n\n[service.web]\nports = [\"tcp/80\", \"tcp/8000-8080\"]\nalias = \"router\"\n"))
	if s := c.Services["ssh"]; s.Builtin || s.Alias != "" || !slices.Equal(s.Ports, []PortSpec{{"tcp", 2222, 2222}}) {
		t.Errorf("redefined ssh: %+v", s)
	}
	if s := c.Services["web"]; s.Name != "web" || s.Builtin || s.Alias != "router" || !slices.Equal(s.Ports, []PortSpec{{"tcp", 80, 80}, {"tcp", 8000, 8080}}) {
		t.Errorf("web: %+v", s)
	}
	if got := c.Services["web"].Ports[1].String(); got != "tcp/8000-8080" {
		t.Errorf("PortSpec.String() = %q", got)
	}
}

func TestResolution(t *testing.T) {
	c := mustParse(t, baseDoc)
	p0, p1 := c.DHCP.Pools[0], c.DHCP.Pools[1]
	if p0.Router != addr("192.168.1.1") || !slices.Equal(p0.DNS, []netip.Addr{addr("192.168.1.3")}) || p0.Subnet != netip.MustParsePrefix("192.168.1.0/24") || p0.Relayed {
		t.Errorf("pool 0: %+v", p0)
	}
	// Pool 1 names no dns: it gets the DNS role's address.
	if p1.Router != addr("10.0.0.1") || !slices.Equal(p1.DNS, []netip.Addr{addr("192.168.1.3")}) || p1.Subnet != netip.MustParsePrefix("10.0.0.0/24") || p1.Relayed {
		t.Errorf("pool 1: %+v", p1)
	}

	// Without router = the pool gets the router role's alias when it is on the
	// pool's subnet, and no router otherwise. Addresses and alias names mix.
	c = mustParse(t, edit(t, baseDoc,
		"router = \"router\"\ndns = [\"dns\"]", "dns = [\"192.168.1.53\", \"dns\"]\nntp = [\"router\", \"192.168.1.250\"]",
		"router = \"lab\"\n", ""))
	p0, p1 = c.DHCP.Pools[0], c.DHCP.Pools[1]
	if p0.Router != addr("192.168.1.1") || !slices.Equal(p0.DNS, []netip.Addr{addr("192.168.1.53"), addr("192.168.1.3")}) ||
		!slices.Equal(p0.NTP, []netip.Addr{addr("192.168.1.1"), addr("192.168.1.250")}) {
		t.Errorf("pool 0: %+v", p0)
	}
	if p1.Router.IsValid() {
		t.Errorf("pool 1 router %v, want none (the router alias is not on 10.0.0.0/24)", p1.Router)
	}
	if c.RoleAddr("router") != addr("192.168.1.1") || c.RoleAddr("dhcp") != addr("192.168.1.2") || c.RoleAddr("dns") != addr("192.168.1.3") {
		t.Errorf("role addresses %v %v %v", c.RoleAddr("router"), c.RoleAddr("dhcp"), c.RoleAddr("dns"))
	}
}

func TestRelayedPool(t *testing.T) {
	c := mustParse(t, edit(t, baseDoc, "router = \"lab\"\n", "router = \"lab\"\n\n[[dhcp.pool]]\nrange = \"10.20.0.100-10.20.0.199\"\nsubnet = \"10.20.0.7/24\"\nrouter = \"10.20.0.1\"\n"))
	p := c.DHCP.Pools[2]
	if !p.Relayed || p.Subnet != netip.MustParsePrefix("10.20.0.0/24") || p.Router != addr("10.20.0.1") {
		t.Errorf("relayed pool: %+v", p)
	}
	// A relayed subnet is no alias's, so it gets no implicit zone.
	if z := c.ZoneOf(addr("10.20.0.100")); z != nil {
		t.Errorf("relayed subnet in zone %s", z.Name)
	}
	// A static lease may sit on the relayed subnet.
	mustParse(t, edit(t, baseDoc, "router = \"lab\"\n", "router = \"lab\"\n\n[[dhcp.pool]]\nrange = \"10.20.0.100-10.20.0.199\"\nsubnet = \"10.20.0.0/24\"\n",
		"address = \"192.168.1.10\"", "address = \"10.20.0.10\""))
}

func TestAliasesSharingASubnet(t *testing.T) {
	// router, dhcp and dns already share 192.168.1.0/24; a fourth is fine too,
	// and so is a /32.
	c := mustParse(t, edit(t, baseDoc, addAlias("extra", "192.168.1.4/24")...))
	if len(c.Aliases) != 5 || c.Aliases[4].Subnet() != c.Aliases[0].Subnet() {
		t.Errorf("aliases: %+v", c.Aliases)
	}
	mustParse(t, edit(t, baseDoc, addAlias("host", "172.16.0.1/32")...))
}

func TestImplicitZones(t *testing.T) {
	noLabZone := []string{"\n[zone.lab]\nsubnets = [\"10.0.0.0/24\"]\nallow = [\"dns\"]\nforward = [\"upstream\"]\n", "", `forward = ["upstream", "lab"]`, `forward = ["upstream"]`}
	zoneNames := func(c *Config) []string {
		var out []string
		for _, z := range c.Zones {
			out = append(out, z.Name)
		}
		return out
	}

	c := mustParse(t, baseDoc)
	if got := zoneNames(c); !slices.Equal(got, []string{"lab", "lan"}) {
		t.Errorf("zones %q", got)
	}

	c = mustParse(t, edit(t, baseDoc, noLabZone...))
	if got := zoneNames(c); !slices.Equal(got, []string{"lan", "auto-lab"}) {
		t.Fatalf("zones %q, want lan, auto-lab", got)
	}
	z := c.Zones[1]
	want := &Zone{Name: "auto-lab", Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}, Implicit: true}
	if !reflect.DeepEqual(z, want) {
		t.Errorf("implicit zone %+v, want %+v (closed: no allow, no forward)", z, want)
	}
	if c.ZoneOf(addr("10.0.0.77")) != z || c.ZoneOf(addr("192.168.1.77")).Name != "lan" || c.ZoneOf(addr("8.8.8.8")) != nil {
		t.Error("ZoneOf does not see the implicit zone")
	}
	if c.Zone("auto-lab") != z || c.Zone("lan").Implicit || c.Zone("lab") != nil {
		t.Error("Zone(name) does not tell the file's zones from the implicit one")
	}

	// Two aliases on one uncovered subnet share one implicit zone, named after
	// the first; a file zone already called auto-<alias> pushes the name on.
	c = mustParse(t, edit(t, baseDoc, append(noLabZone, append(addAlias("lab2", "10.0.0.2/24"),
		"", "\n[zone.auto-lab]\nsubnets = [\"172.16.0.0/16\"]\n")...)...))
	if got := zoneNames(c); !slices.Equal(got, []string{"auto-lab", "lan", "auto-lab-2"}) {
		t.Errorf("zones %q, want auto-lab, lan, auto-lab-2", got)
	}
	if c.ZoneOf(addr("10.0.0.2")).Name != "auto-lab-2" {
		t.Errorf("lab2 in %s", c.ZoneOf(addr("10.0.0.2")).Name)
	}
}

func TestHeld(t *testing.T) {
	shared := edit(t, baseDoc,
		"name = \"dhcp\"\n", "name = \"dhcp\"\nhost = \"gw1\"\n",
		"name = \"dns\"\n", "name = \"dns\"\nhost = \"gw2\"\n")
	names := func(as []Alias) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Name)
		}
		return out
	}
	for _, tc := range []struct {
		host          string
		held          []string
		dhcpH, dnsH   bool
		routerH, labH bool
	}{
		{"gw1", []string{"router", "dhcp", "lab"}, true, false, true, true},
		{"gw2", []string{"router", "dns", "lab"}, false, true, true, true},
		{"gw3", []string{"router", "lab"}, false, false, true, true},
	} {
		t.Run(tc.host, func(t *testing.T) {
			c := mustParse(t, edit(t, shared, `host = "gw1"`+"\n\n", `host = "`+tc.host+"\"\n\n"))
			if got := names(c.Held()); !slices.Equal(got, tc.held) {
				t.Errorf("Held() = %q, want %q", got, tc.held)
			}
			for role, want := range map[string]bool{"dhcp": tc.dhcpH, "dns": tc.dnsH, "router": tc.routerH} {
				a, held := c.RoleAlias(role)
				if a == nil || a.Name != role || held != want {
					t.Errorf("RoleAlias(%s) = %v, %v; want alias %s, %v", role, a, held, role, want)
				}
				if c.Holds(*a) != want {
					t.Errorf("Holds(%s) = %v", role, !want)
				}
			}
			if c.Holds(*c.Alias("lab")) != tc.labH {
				t.Error("Holds(lab)")
			}
			// The role's address is the same on every box.
			if c.RoleAddr("dns") != addr("192.168.1.3") {
				t.Errorf("RoleAddr(dns) = %v", c.RoleAddr("dns"))
			}
		})
	}

	c := mustParse(t, edit(t, baseDoc, "[dns]\nalias = \"dns\"\nupstreams = [\"192.168.1.254\"]\n", "", `dns = ["dns"]`, `dns = ["192.168.1.3"]`, `allow = ["dhcp", "dns", "ssh"]`, `allow = ["dhcp", "ssh"]`, `allow = ["dns"]`, `allow = []`))
	if a, held := c.RoleAlias("dns"); a != nil || held || c.RoleAddr("dns").IsValid() {
		t.Errorf("unconfigured role: RoleAlias = %v, %v; RoleAddr = %v", a, held, c.RoleAddr("dns"))
	}
	if a, held := c.RoleAlias("ntp"); a != nil || held {
		t.Errorf("unknown role: %v, %v", a, held)
	}
	if a := c.Alias("lab"); a != &c.Aliases[3] {
		t.Errorf("Alias(lab) = %p, want %p", a, &c.Aliases[3])
	}
	if c.Alias("nope") != nil {
		t.Error("Alias(nope) != nil")
	}
}

// TestSchemaUntouched checks that validation only reads the decoded file: what
// the model holds, validation resolved.
func TestSchemaUntouched(t *testing.T) {
	seed, err := os.ReadFile("../etc/gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{baseDoc, string(seed)} {
		var before, after file
		for _, f := range []*file{&before, &after} {
			if _, err := toml.Decode(text, f); err != nil {
				t.Fatal(err)
			}
		}
		p := &problems{file: "t.toml", loc: newLocator(text)}
		c := validate(&after, "t.toml", p, func(...string) bool { return false })
		if err := p.err(); err != nil || c == nil {
			t.Fatalf("validate: %v", err)
		}
		if !reflect.DeepEqual(before, after) {
			t.Errorf("validate changed the decoded file:\nbefore %+v\nafter  %+v", before, after)
		}
	}
}

// TestOptionValues: options reach the model in wire form.
func TestOptionValues(t *testing.T) {
	c := mustParse(t, edit(t, baseDoc, afterPool1("\n[[dhcp.pool.option]]\ncode = 43\nhex = \"0A0b\"\n"+
		"\n[[dhcp.pool.option]]\ncode = 66\ntext = \"tftp.lan\"\n"+
		"\n[[dhcp.pool.option]]\ncode = 150\nip = [\"10.0.0.5\", \"10.0.0.6\"]\nalways = true\n")...))
	want := []Option{{Code: 43, Value: []byte{0x0a, 0x0b}}, {Code: 66, Value: []byte("tftp.lan")}, {Code: 150, Value: []byte{10, 0, 0, 5, 10, 0, 0, 6}, Always: true}}
	if got := c.DHCP.Pools[1].Options; !reflect.DeepEqual(got, want) {
		t.Errorf("options %v, want %v", got, want)
	}
}
