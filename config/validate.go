package config

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
)

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,30}$`)
	labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// validate checks the decoded file and builds the resolved model from it. It
// reads f and never writes to it; set reports whether the file wrote a key, for
// settings where zero means "off" rather than "default".
func validate(f *file, name string, p *problems, set func(key ...string) bool) *Config {
	c := &Config{File: name, Gateway: buildGateway(f.Gateway, p, set)}
	aliases := buildAliases(f, c, p)
	validateRoles(f, p, aliases)
	c.Upstream = buildUpstream(f, c, p)
	c.Router = buildRouter(f.Router, c, p)
	c.DHCP = buildDHCP(f, c, p, aliases)
	c.DNS = buildDNS(f.DNS, c, p, set)
	buildServices(f, c, p, aliases)
	buildZones(f, c, p)
	validateManagement(f, c, p)
	if !p.found() {
		addImplicitZones(c)
		siteWarnings(f, c, p)
		c.Warnings = p.warningList()
	}
	return c
}

func buildGateway(fg fileGateway, p *problems, set func(key ...string) bool) Gateway {
	g := Gateway{
		Interface:        fg.Interface,
		Host:             fg.Host,
		StateDir:         orDefault(fg.StateDir, DefaultStateDir),
		ControlSocket:    orDefault(fg.ControlSocket, DefaultControlSocket),
		LogLevel:         cmp.Or(fg.LogLevel, "info"),
		LogFormat:        cmp.Or(fg.LogFormat, "text"),
		ProbeTimeout:     fg.ProbeTimeout.or(defaultProbeTimeout),
		AnnounceCount:    fg.AnnounceCount,
		AnnounceInterval: fg.AnnounceInterval.or(defaultAnnounceInterval),
		Management:       slices.Clone(fg.Management),
		Metrics:          fg.Metrics,
	}
	if !set("gateway", "management") {
		g.Management = slices.Clone(defaultManagement)
	}
	if len(fg.ManagementZones) > 0 {
		// Written empty is left out: the zones the kernel shows.
		g.ManagementZones = slices.Clone(fg.ManagementZones)
	}
	if g.Host == "" {
		g.Host, _ = os.Hostname()
	}
	if !set("gateway", "announce_count") {
		g.AnnounceCount = defaultAnnounceCount
	}
	validateGateway(g, p)
	checkDuration(p, "gateway.probe_timeout", fg.ProbeTimeout, span{0, maxProbeTimeout}, "500ms")
	checkDuration(p, "gateway.announce_interval", fg.AnnounceInterval, span{time.Millisecond, time.Minute}, "500ms")
	if fg.Host != "" {
		checkHost(p, "gateway.host", fg.Host)
	}
	return g
}

func validateGateway(g Gateway, p *problems) {
	ifname := g.Interface
	switch {
	case ifname == "":
		p.at("gateway", "interface is missing: set [gateway] interface = \"eth1\" (the NIC that carries every alias)")
	case !validIfname(ifname):
		p.at("gateway.interface", "%s", ifnameProblem(ifname))
	}
	if g.AnnounceCount < 0 || g.AnnounceCount > 100 {
		p.at("gateway.announce_count", "announce_count must be 0-100, not %d", g.AnnounceCount)
	}
	var level slog.Level
	if l := g.LogLevel; l != "" && level.UnmarshalText([]byte(l)) != nil {
		p.at("gateway.log_level", "log_level %q is not a level: use debug, info, warn or error", l)
	}
	if f := g.LogFormat; f != "" && f != "text" && f != "json" {
		p.at("gateway.log_format", "log_format %q is not a format: use text or json", f)
	}
	// The daemon and the commands that talk to it may run in different
	// directories; a relative path would name two places.
	checkPath(p, "state_dir", g.StateDir, false)
	checkPath(p, "control_socket", g.ControlSocket, true)
	if m := g.Metrics; m.IsValid() {
		switch why := notAServer(m.Addr()); {
		case why != "" && !m.Addr().IsUnspecified():
			p.at("gateway.metrics", "metrics cannot listen on %s: it is %s; write an address of this box and a port, e.g. \"127.0.0.1:9253\"", m.Addr(), why)
		case m.Port() == 0:
			p.at("gateway.metrics", "metrics %q names port 0; write a port, e.g. \"127.0.0.1:9253\"", m)
		}
	}
}

// validIfname reports whether s can name a Linux interface.
func validIfname(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, "/: \t") && !strings.ContainsFunc(s, unicode.IsControl)
}

func ifnameProblem(s string) string {
	return fmt.Sprintf("%q is not an interface name (at most 15 bytes, no '/', ':' or spaces)", s)
}

// buildAliases fills c.Aliases, checking names, addresses and labels; it
// returns the aliases by name.
func buildAliases(f *file, c *Config, p *problems) map[string]*Alias {
	c.Aliases = make([]Alias, len(f.Aliases))
	for i, fa := range f.Aliases {
		a := Alias{Name: fa.Name, Address: fa.Address, Label: fa.Label, Host: fa.Host, Adopt: fa.Adopt}
		if a.Label == "" {
			a.Label, a.DefaultLabel = fmt.Sprintf("%s:%d", c.Gateway.Interface, i), true
		}
		c.Aliases[i] = a
	}
	byName := map[string]*Alias{}
	byAddr := map[netip.Addr]string{}
	labels := map[string]string{}
	for i := range c.Aliases {
		a := &c.Aliases[i]
		path := fmt.Sprintf("alias[%d]", i)
		if a.Host != "" {
			checkHost(p, path+".host", a.Host)
		}
		switch {
		case a.Name == "":
			p.at(path, "name is missing: every [[alias]] needs a name such as \"dns\"")
		case !nameRE.MatchString(a.Name):
			p.at(path+".name", "%q is not a valid name: use lowercase letters, digits, '-' and '_' (at most 31)", a.Name)
		case byName[a.Name] != nil:
			p.at(path+".name", "alias %q is defined twice (first on line %d); alias names must be unique", a.Name, p.line(aliasPath(c, a.Name)+".name"))
		default:
			byName[a.Name] = a
		}
		if !a.Address.IsValid() {
			p.at(path, "address is missing: set address = \"192.168.1.2/24\" (address and subnet length)")
			continue
		}
		if !checkHostPrefix(p, path+".address", a.Address, aliasAddress) {
			continue
		}
		if other, dup := byAddr[a.Address.Addr()]; dup {
			p.at(path+".address", "address %s is also used by alias %q (line %d); each alias needs its own address", a.Address.Addr(), other, p.line(aliasPath(c, other)+".address"))
		} else {
			byAddr[a.Address.Addr()] = a.Name
			checkSubnetLength(c, p, i)
		}
		checkLabel(c, p, i, labels)
	}
	return byName
}

// hostPrefix words the checks of an address of this box's own, written with
// its prefix length, for checkHostPrefix.
type hostPrefix struct {
	notIPv4, needs string
}

var aliasAddress = hostPrefix{
	notIPv4: "aliases are IPv4 addresses with a prefix length",
	needs:   `an alias needs a unicast address of your network, e.g. "192.168.1.2/24"`,
}

// checkHostPrefix checks that a is a usable IPv4 host address: not
// reserved, not its subnet's network or broadcast address. It reports
// false when a is not IPv4 (nothing else can be checked then).
func checkHostPrefix(p *problems, path string, a netip.Prefix, w hostPrefix) bool {
	if !a.Addr().Is4() {
		p.at(path, "%s is not IPv4; %s", a, w.notIPv4)
		return false
	}
	subnet := a.Masked()
	if why := reservedAddr(a.Addr()); why != "" {
		p.at(path, "%s is %s; %s", a.Addr(), why, w.needs)
	} else if a.Bits() < 31 && (a.Addr() == subnet.Addr() || a.Addr() == broadcast(subnet)) {
		p.at(path, "%s is the network or broadcast address of %s; pick a host address", a.Addr(), subnet)
	}
	return true
}

// checkSubnetLength reports alias i when its subnet overlaps an earlier alias's
// subnet with another prefix length (once, for the first such alias).
func checkSubnetLength(c *Config, p *problems, i int) {
	a := c.Aliases[i]
	for j, o := range c.Aliases[:i] {
		if o.Address.IsValid() && o.Address.Bits() != a.Address.Bits() && o.Subnet().Overlaps(a.Subnet()) {
			p.at(fmt.Sprintf("alias[%d].address", i), "subnet %s overlaps %s of alias %q (line %d); aliases on one subnet must use the same prefix length",
				a.Subnet(), o.Subnet(), o.Name, p.line(fmt.Sprintf("alias[%d].address", j)))
			return
		}
	}
}

// checkLabel checks alias i's label; labels maps the labels seen to their alias.
func checkLabel(c *Config, p *problems, i int, labels map[string]string) {
	a := c.Aliases[i]
	path := fmt.Sprintf("alias[%d].label", i)
	switch {
	case len(a.Label) > 15 && a.DefaultLabel:
		p.at(path, "the default label %q (interface:index) is %d bytes; the kernel allows at most 15: set label = \"...\" on this alias", a.Label, len(a.Label))
	case len(a.Label) > 15:
		p.at(path, "label %q is %d bytes; the kernel allows at most 15", a.Label, len(a.Label))
	case labels[a.Label] != "":
		p.at(path, "label %q is also used by alias %q; labels must be unique", a.Label, labels[a.Label])
	case c.Gateway.Interface != "" && a.Label == c.Gateway.Interface:
		// The aliases package never removes a subnet's first address
		// labelled so (the NIC's own): such an alias could never move.
		p.at(path, "label %q: label must be %s:<something>, e.g. %s:%d; the bare interface name is the NIC's own address",
			a.Label, a.Label, a.Label, i)
	case c.Gateway.Interface != "" && !strings.HasPrefix(a.Label, c.Gateway.Interface):
		p.at(path, "label %q must start with the interface name, e.g. \"%s:%d\"", a.Label, c.Gateway.Interface, i)
	}
	labels[a.Label] = a.Name
}

func aliasPath(c *Config, name string) string {
	for i, a := range c.Aliases {
		if a.Name == name {
			return fmt.Sprintf("alias[%d]", i)
		}
	}
	return "alias"
}

// broadcast is the last address of an IPv4 subnet (invalid for IPv6).
func broadcast(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() {
		return netip.Addr{}
	}
	a := p.Masked().Addr().As4()
	v := be32(a) | (1<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// validateRoles checks that every role names an existing alias of its own.
func validateRoles(f *file, p *problems, aliases map[string]*Alias) {
	used := map[string]string{}
	check := func(role, alias string) {
		switch {
		case alias == "":
			p.at(role, "alias is missing: set alias = \"<name of an [[alias]]>\" for the %s role", role)
		case aliases[alias] == nil:
			p.at(role+".alias", "alias %q does not exist; defined aliases: %s", alias, names(aliases))
		case used[alias] != "":
			p.at(role+".alias", "alias %q already carries the %s role; each role needs its own alias so it can move alone (add an [[alias]] for %s)", alias, used[alias], role)
		default:
			used[alias] = role
		}
	}
	if f.Router != nil {
		check("router", f.Router.Alias)
	}
	if f.DHCP != nil {
		check("dhcp", f.DHCP.Alias)
	}
	if f.DNS != nil {
		check("dns", f.DNS.Alias)
	}
}

// names lists a map's keys in order for a message, rendered only when the
// message is: a file may define thousands, and a message lists 20.
func names[T any](m map[string]T) fmt.Stringer {
	return nameList(func() string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		sort.Strings(s)
		switch {
		case len(s) == 0:
			return "(none)"
		case len(s) > 20:
			return strings.Join(s[:20], ", ") + fmt.Sprintf(" and %d more", len(s)-20)
		}
		return strings.Join(s, ", ")
	})
}

type nameList func() string

func (f nameList) String() string { return f() }

// onLink reports whether a is inside the subnet of some alias.
func (c *Config) onLink(a netip.Addr) bool {
	for _, al := range c.Aliases {
		if al.Address.IsValid() && al.Subnet().Contains(a) {
			return true
		}
	}
	return false
}

func buildRouter(fr *fileRouter, c *Config, p *problems) *Router {
	if fr == nil {
		return nil
	}
	r := &Router{Alias: fr.Alias, Upstream: fr.Upstream, Masquerade: fr.Masquerade}
	switch {
	case !r.Upstream.IsValid():
	case c.Upstream != nil:
		p.at("router.upstream", "upstream cannot be set with [upstream]: the WAN port gives the default route (%s), and the box takes it from one source; remove this line", c.Upstream.routeSource())
	case !c.onLink(r.Upstream):
		p.at("router.upstream", "upstream %s is not on any alias subnet; the next hop must be directly reachable on %s", r.Upstream, c.Gateway.Interface)
	}
	r.Routes = buildRoutes(c, p, "router", fr.Routes, true)
	return r
}

// buildRoutes checks the [[<parent>.route]] tables; needOnLink says whether
// the next hop must be on an alias subnet (a route of this box's own).
func buildRoutes(c *Config, p *problems, parent string, list []fileRoute, needOnLink bool) []Route {
	var out []Route
	for i, rt := range list {
		validateRoute(c, p, fmt.Sprintf("%s.route[%d]", parent, i), Route(rt), needOnLink)
		out = append(out, Route(rt))
	}
	return out
}

func validateRoute(c *Config, p *problems, path string, rt Route, needOnLink bool) {
	switch {
	case !rt.To.IsValid():
		p.at(path, "to is missing: set to = \"10.1.0.0/16\"")
	case rt.To != rt.To.Masked():
		p.at(path+".to", "%s has host bits set; did you mean %s?", rt.To, rt.To.Masked())
	}
	switch {
	case !rt.Via.IsValid():
		p.at(path, "via is missing: set via = \"<next hop address>\"")
	case needOnLink && !c.onLink(rt.Via):
		p.at(path+".via", "next hop %s is not on any alias subnet; the next hop must be directly reachable on %s", rt.Via, c.Gateway.Interface)
	case needOnLink:
		for _, a := range c.Held() {
			if a.Address.Addr() == rt.Via {
				p.warn(path+".via", "next hop %s is the address of alias %q, which this box holds: the kernel refuses a route via the box's own address", rt.Via, a.Name)
			}
		}
	}
}
