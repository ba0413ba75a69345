package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// allErrCases is every refused-document table, for seeding the fuzzer.
var allErrCases = [][]errCase{aliasCases, roleCases, dhcpCases, zoneCases, serviceCases, gatewayDNSCases, unknownKeyCases, syntaxCases, typeCases, limitCases, inlineCases, hintCases}

// trickySeeds are shapes the locator has to survive: inline arrays of tables,
// quoted keys, multi-line strings holding "[" and "=", CRLF, nested arrays.
var trickySeeds = []string{
	"[gateway]\ninterface = \"eth1\"\nalias = [{name = \"a\", address = \"10.0.0.1/24\"}, {name = \"b\", address = \"bad\"}]\n",
	"alias = [{name = \"a\", address = \"10.0.0.1/24\"}, {name = \"b\", address = \"bad\"}]\n[gateway]\ninterface = \"eth1\"\n",
	"[gateway]\ninterface = \"eth1\"\n[zone.\"a.b\"]\nsubnets = [\"10.0.0.0/24\", 5]\n",
	"[gateway]\ninterface = \"eth1\"\n[zone.'x y']\nallow = ['nope']\n",
	"[gateway]\r\ninterface = \"eth1\"\r\n[[alias]]\r\nname = \"a\"\r\naddress = \"10.0.0.1\"\r\n",
	"[gateway]\ninterface = \"eth1\"\n[[dhcp.pool]]\n[[dhcp.pool.option]]\ncode = 1\ntext = \"\"\"\n[x]\na = 1\n\"\"\"\nbogus = 2\n",
	"[gateway]\ninterface = \"eth1\"\n[service.x]\nports = [\n[\"tcp/1\"],\n\"tcp/2\",\n]\n",
	"[gateway]\ninterface = \"eth1\"\n[dns]\nupstreams = [\"1.1.1.1\", '''2.2.2.2\n''', 3]\n",
	"[gateway]\ninterface = \"eth1\"\n[dns]\nupstreams = [\"\\\"\", \"x\" # c ]\n, \"y\"]\n",
	"gateway.interface = \"eth1\"\ngateway.bogus = 1\nzone.a.subnets = [\"10.0.0.0/8\"]\nzone.b.subnets = [\"10.1.0.0/16\"]\n",
	"[gateway]\ninterface = \"eth1\"\n[[alias]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n[[alias]]\nname = \"b\"\naddress = \"10.0.0.2/24\"\n[dhcp]\nalias = \"a\"\n[[dhcp.pool]]\nrange = \"10.0.0.10-10.0.0.20\"\nsubnet = \"::/0\"\n[[dhcp.static]]\nmac = \"00:00:00:00:00:01\"\naddress = \"::1\"\n",
	"[gateway]\ninterface = \"eth1\"\n[zone.\"a\\nb\"]\nforward = [\"x\"]\n",
	"[gateway]\ninterface = \"eth1\"\nmetrics = \"[::1]:9253\"\nmanagement = [\"web\"]\n[upstream]\ninterface = \"eth0\"\naddress = \"203.0.113.2/31\"\ngateway = \"203.0.113.3\"\n[zone.v]\ninterfaces = [\"wg0\", \"eth0\"]\n",
	"[gateway]\ninterface = \"eth1\"\n[[alias]]\nname = \"a\"\naddress = \"0.0.0.0/0\"\n[[alias]]\nname = \"b\"\naddress = \"10.0.0.2/32\"\n",
}

var placeRE = regexp.MustCompile(`^f\.toml:(\d+):(\d+): `)

// FuzzParse: Parse never panics, and returns either a config or an error whose
// every line names the file and a line:column inside the text.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("../etc/gateway.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(baseDoc))
	for _, cases := range allErrCases {
		for _, tc := range cases {
			f.Add([]byte(edit(f, baseDoc, tc.edits...)))
		}
	}
	for _, text := range append(trickySeeds, validTOML...) {
		f.Add([]byte(text))
	}
	for _, tc := range boundCases {
		if len(tc.text) < 4096 {
			f.Add([]byte(tc.text))
		}
	}
	files, _ := filepath.Glob("testdata/*.toml")
	warned, _ := filepath.Glob("testdata/warnings/*.toml")
	files = append(files, warned...)
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		// A hang would stall the fuzzer silently; crash instead, so the input is kept.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("Parse has not returned after 10s on %q", text))
			}
		}()
		c, err := Parse("f.toml", text)
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			checkAccepted(t, c)
			for _, w := range c.Warnings {
				if m := placeRE.FindStringSubmatch(w.String()); m == nil || strings.Contains(w.String(), "\n") {
					t.Fatalf("warning not placed on one line: %q", w.String())
				}
			}
			return
		}
		if c != nil {
			t.Fatalf("a config along with the error %v", err)
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
		}
		lines := strings.Split(string(text), "\n")
		for _, e := range list {
			msg := e.Error()
			m := placeRE.FindStringSubmatch(msg)
			if m == nil {
				t.Fatalf("error does not start with f.toml:line:col: %q", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			if line < 1 || line > len(lines) || col < 1 || col > len(lines[line-1])+1 {
				t.Fatalf("error placed outside the text (%d lines): %q", len(lines), msg)
			}
		}
	})
}

// checkAccepted checks promises an accepted config makes to its consumers.
func checkAccepted(t *testing.T, c *Config) {
	for _, a := range c.Aliases {
		if len(a.Label) > 15 || !a.Address.Addr().Is4() || reservedAddr(a.Address.Addr()) != "" {
			t.Fatalf("accepted alias %+v", a)
		}
		if c.ZoneOf(a.Address.Addr()) == nil {
			t.Fatalf("alias %s is in no zone", a.Name)
		}
	}
	for _, role := range []string{"router", "dhcp", "dns"} {
		if a, _ := c.RoleAlias(role); a == nil && c.RoleAddr(role).IsValid() {
			t.Fatalf("role %s has an address but no alias", role)
		}
	}
	for _, s := range c.Services {
		if len(s.Ports) == 0 {
			t.Fatalf("service %s has no ports", s.Name)
		}
		for _, ps := range s.Ports {
			if spec, err := ParsePortSpec(ps.String()); err != nil || spec != ps {
				t.Fatalf("service %s: port %+v does not read back (%v)", s.Name, ps, err)
			}
		}
	}
	if c.DHCP != nil {
		checkAcceptedDHCP(t, c.DHCP)
	}
	if d := c.DNS; d != nil {
		if d.MaxFlight < 1 || d.MaxFlight > maxInflight || d.Cache.Size < 0 || d.Cache.Size > maxCacheSize ||
			d.Timeout <= 0 || d.LocalTTL <= 0 || d.Cache.MaxTTL <= 0 || d.Cache.NegTTL <= 0 || d.Cache.MinTTL > d.Cache.MaxTTL {
			t.Fatalf("accepted dns settings %+v", d)
		}
		for _, u := range d.Upstreams {
			if u.Port() == 0 || notAServer(u.Addr()) != "" {
				t.Fatalf("accepted upstream %v", u)
			}
		}
	}
	checkAcceptedAccess(t, c)
	if d := c.DNS; d != nil && (d.Cache.StaleAnswerAfter < 0 || d.Cache.StaleAnswerAfter > d.Timeout) {
		t.Fatalf("accepted stale_answer_after %v with timeout %v", d.Cache.StaleAnswerAfter, d.Timeout)
	}
	if g := c.Gateway; g.AnnounceInterval <= 0 || g.ProbeTimeout < 0 || len(g.Host) > maxHost || len(g.ControlSocket) > maxSocketPath {
		t.Fatalf("accepted gateway settings %+v", g)
	}
}

// checkAcceptedAccess: the WAN port, zone interfaces and metrics as the
// firewall and the router role rely on them.
func checkAcceptedAccess(t *testing.T, c *Config) {
	if u := c.Upstream; u != nil {
		static := u.Address.IsValid() && u.Address.Addr().Is4() && u.Address.Masked().Contains(u.Gateway) && u.Gateway != u.Address.Addr()
		if !validIfname(u.Interface) || u.Interface == c.Gateway.Interface || u.DHCP == static || c.Router != nil && c.Router.Upstream.IsValid() {
			t.Fatalf("accepted upstream %+v (router %+v)", u, c.Router)
		}
	}
	owner := map[string]string{}
	for _, z := range c.Zones {
		for _, ifname := range z.Interfaces {
			if !validIfname(ifname) || ifname == c.Gateway.Interface || c.Upstream != nil && ifname == c.Upstream.Interface || owner[ifname] != "" {
				t.Fatalf("zone %s: accepted interface %q (also in %q)", z.Name, ifname, owner[ifname])
			}
			owner[ifname] = z.Name
		}
	}
	if web := c.Services["web"]; web != nil && web.Builtin && !c.Gateway.Metrics.IsValid() {
		t.Fatalf("built-in web %+v without metrics", web)
	}
	if m := c.Gateway.Metrics; m.IsValid() && (m.Port() == 0 || c.Services["web"] == nil) {
		t.Fatalf("accepted metrics %v (web %+v)", m, c.Services["web"])
	}
}

// checkAcceptedDHCP: what the DHCP role puts on the wire fits and means
// something.
func checkAcceptedDHCP(t *testing.T, d *DHCP) {
	if d.LeaseTime < time.Minute || d.OfferTime <= 0 || d.DeclineTime <= 0 {
		t.Fatalf("accepted dhcp times %+v", d)
	}
	for _, p := range d.Pools {
		if !p.Subnet.Contains(p.Range.Start) || !p.Subnet.Contains(p.Range.End) {
			t.Fatalf("pool %v outside its subnet %v", p.Range, p.Subnet)
		}
		if !(0 < p.RenewTime && p.RenewTime < p.RebindTime && p.RebindTime < p.LeaseTime) {
			t.Fatalf("pool %v times %v %v %v", p.Range, p.RenewTime, p.RebindTime, p.LeaseTime)
		}
		if len(p.DNS) > maxOptionAddrs || len(p.NTP) > maxOptionAddrs {
			t.Fatalf("pool %v: %d dns, %d ntp servers", p.Range, len(p.DNS), len(p.NTP))
		}
		for _, a := range append(p.DNS, p.NTP...) {
			if reservedAddr(a) != "" {
				t.Fatalf("pool %v hands out %v", p.Range, a)
			}
		}
		codes := map[int]bool{}
		for _, o := range p.Options {
			if len(o.Value) == 0 || len(o.Value) > maxOptionLen || codes[o.Code] {
				t.Fatalf("pool %v option %d: %d bytes (or set twice)", p.Range, o.Code, len(o.Value))
			}
			codes[o.Code] = true
		}
	}
}
