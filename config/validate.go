package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,30}$`)
	labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// validate checks the decoded config and resolves its name references.
func validate(c *Config, p *problems) {
	validateGateway(c, p)
	aliases := validateAliases(c, p)
	validateRoles(c, p, aliases)
	if c.Router != nil {
		validateRouter(c, p)
	}
	if c.DHCP != nil {
		validateDHCP(c, p, aliases)
	}
	if c.DNS != nil {
		validateDNS(c, p, aliases)
	}
	validateServices(c, p, aliases)
	validateZones(c, p)
	if len(p.list) == 0 {
		addImplicitZones(c)
	}
}

func validateGateway(c *Config, p *problems) {
	ifname := c.Gateway.Interface
	switch {
	case ifname == "":
		p.at("gateway", "interface is missing: set [gateway] interface = \"eth1\" (the NIC that carries every alias)")
	case len(ifname) > 15 || strings.ContainsAny(ifname, "/: \t"):
		p.at("gateway.interface", "%q is not an interface name (at most 15 bytes, no '/', ':' or spaces)", ifname)
	}
	if c.Gateway.AnnounceCount < 0 || c.Gateway.AnnounceCount > 100 {
		p.at("gateway.announce_count", "announce_count must be 0-100, not %d", c.Gateway.AnnounceCount)
	}
	var level slog.Level
	if l := c.Gateway.LogLevel; l != "" && level.UnmarshalText([]byte(l)) != nil {
		p.at("gateway.log_level", "log_level %q is not a level: use debug, info, warn or error", l)
	}
	if f := c.Gateway.LogFormat; f != "" && f != "text" && f != "json" {
		p.at("gateway.log_format", "log_format %q is not a format: use text or json", f)
	}
	// The daemon and the commands that talk to it may run in different
	// directories; a relative path would name two places.
	for _, kv := range [][2]string{{"state_dir", c.Gateway.StateDir}, {"control_socket", c.Gateway.ControlSocket}} {
		if !filepath.IsAbs(kv[1]) {
			p.at("gateway."+kv[0], "%s %q is not an absolute path: write it from /", kv[0], kv[1])
		}
	}
}

// validateAliases checks names, addresses and labels; it returns the aliases by name.
func validateAliases(c *Config, p *problems) map[string]*Alias {
	byName := map[string]*Alias{}
	byAddr := map[netip.Addr]string{}
	labels := map[string]string{}
	for i := range c.Aliases {
		a := &c.Aliases[i]
		path := fmt.Sprintf("alias[%d]", i)
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
		if !a.Address.Addr().Is4() {
			p.at(path+".address", "%s is not IPv4; aliases are IPv4 addresses with a prefix length", a.Address)
			continue
		}
		if bits := a.Address.Bits(); bits < 31 && (a.Address.Addr() == a.Subnet().Addr() || a.Address.Addr() == broadcast(a.Subnet())) {
			p.at(path+".address", "%s is the network or broadcast address of %s; pick a host address", a.Address.Addr(), a.Subnet())
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
	case c.Gateway.Interface != "" && !strings.HasPrefix(a.Label, c.Gateway.Interface):
		p.at(path, "label %q must start with the interface name, e.g. \"%s:%d\"", a.Label, c.Gateway.Interface, i)
	}
	labels[a.Label] = a.Name
}

func defaultLabel(c *Config, i int) string { return fmt.Sprintf("%s:%d", c.Gateway.Interface, i) }

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
func validateRoles(c *Config, p *problems, aliases map[string]*Alias) {
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
	if c.Router != nil {
		check("router", c.Router.Alias)
	}
	if c.DHCP != nil {
		check("dhcp", c.DHCP.Alias)
	}
	if c.DNS != nil {
		check("dns", c.DNS.Alias)
	}
}

func names[T any](m map[string]T) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// onLink reports whether a is inside the subnet of some alias.
func (c *Config) onLink(a netip.Addr) bool {
	for _, al := range c.Aliases {
		if al.Address.IsValid() && al.Subnet().Contains(a) {
			return true
		}
	}
	return false
}

func validateRouter(c *Config, p *problems) {
	r := c.Router
	if r.Upstream.IsValid() && !c.onLink(r.Upstream) {
		p.at("router.upstream", "upstream %s is not on any alias subnet; the next hop must be directly reachable on %s", r.Upstream, c.Gateway.Interface)
	}
	for i, rt := range r.Routes {
		validateRoute(c, p, fmt.Sprintf("router.route[%d]", i), rt, true)
	}
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
	}
}
