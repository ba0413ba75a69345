package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Upstream is the forward target meaning "anything outside every zone".
const Upstream = "upstream"

func validateDNS(c *Config, p *problems, aliases map[string]*Alias) {
	d := c.DNS
	if !validDomain(d.Domain) {
		p.at("dns.domain", "%q is not a valid domain name: dot-separated labels of letters, digits and '-', e.g. \"home.arpa\"", d.Domain)
	}
	d.UpstreamAddrs = parseServers(p, "dns.upstreams", d.Upstreams)
	for i, h := range d.Hosts {
		path := fmt.Sprintf("dns.host[%d]", i)
		if !validDomain(h.Name) {
			p.at(path+".name", "%q is not a valid host name", h.Name)
		}
		if !h.Address.IsValid() {
			p.at(path, "address is missing: set address = \"192.168.1.20\"")
		}
	}
	for i, cn := range d.CNAMEs {
		path := fmt.Sprintf("dns.cname[%d]", i)
		if !validDomain(cn.Name) || !validDomain(cn.Target) {
			p.at(path, "cname needs a valid name and target (got %q → %q)", cn.Name, cn.Target)
		}
	}
	for i := range d.Forward {
		f := &d.Forward[i]
		path := fmt.Sprintf("dns.forward[%d]", i)
		if !validDomain(f.Domain) {
			p.at(path+".domain", "%q is not a valid domain name", f.Domain)
		}
		if len(f.Servers) == 0 {
			p.at(path, "servers is missing: set servers = [\"10.0.0.53\"]")
		}
		f.ServerAddrs = parseServers(p, path+".servers", f.Servers)
	}
	for i, dom := range d.Rebind.Allow {
		if !validDomain(dom) {
			p.atElem("dns.rebind.allow", i, "%q is not a valid domain name", dom)
		}
	}
	if d.Cache.Size < 0 {
		p.at("dns.cache.size", "cache size must be 0 or more")
	}
}

// parseServers reads "a.b.c.d" or "a.b.c.d:port".
func parseServers(p *problems, path string, list []string) []netip.AddrPort {
	var out []netip.AddrPort
	for i, s := range list {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			out = append(out, ap)
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53))
		} else {
			p.atElem(path, i, "%q is not an address or address:port, e.g. \"192.168.1.254\" or \"192.168.1.254:5353\"", s)
		}
	}
	return out
}

func validDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func validateServices(c *Config, p *problems, aliases map[string]*Alias) {
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		path := "service." + name
		if !nameRE.MatchString(name) {
			p.at(path, "%q is not a valid service name: lowercase letters, digits, '-' and '_'", name)
		}
		if !s.Builtin && len(s.Ports) == 0 {
			p.at(path, "ports is missing: set ports = [\"tcp/8080\"]")
		}
		s.PortSpecs = nil
		for i, port := range s.Ports {
			spec, err := ParsePortSpec(port)
			if err != nil {
				p.atElem(path+".ports", i, "%v", err)
				continue
			}
			s.PortSpecs = append(s.PortSpecs, spec)
		}
		// A built-in service's alias is its role's, checked with the role.
		if !s.Builtin && s.Alias != "" && aliases[s.Alias] == nil {
			p.at(path+".alias", "alias %q does not exist; defined aliases: %s", s.Alias, names(aliases))
		}
	}
}

func validateZones(c *Config, p *problems) {
	for _, name := range sortedKeys(c.ZoneSet) {
		z := c.ZoneSet[name]
		path := "zone." + name
		if !nameRE.MatchString(name) || name == Upstream {
			p.at(path, "%q is not a valid zone name: lowercase letters, digits, '-' and '_', and not %q", name, Upstream)
		}
		for i, s := range z.Allow {
			if c.Services[s] == nil {
				if s == "dhcp" || s == "dns" {
					p.atElem(path+".allow", i, "service %q needs the [%s] role, which this file does not configure", s, s)
					continue
				}
				p.atElem(path+".allow", i, "unknown service %q; known services: %s (define others under [service.<name>])", s, names(c.Services))
			}
		}
		for i, f := range z.Forward {
			if f != Upstream && c.ZoneSet[f] == nil {
				p.atElem(path+".forward", i, "unknown zone %q; forward names zones (%s) or %q", f, names(c.ZoneSet), Upstream)
			}
		}
	}
	validateZoneSubnets(c, p)
}

// validateZoneSubnets checks every zone subnet and that no two overlap. An
// overlap is reported once, at the subnet written later in the file.
func validateZoneSubnets(c *Config, p *problems) {
	type entry struct {
		zone, path string
		i          int
		net        netip.Prefix
		pos        position
	}
	var all []entry
	for _, name := range sortedKeys(c.ZoneSet) {
		path := "zone." + name + ".subnets"
		for i, sn := range c.ZoneSet[name].Subnets {
			switch {
			case !sn.Addr().Is4():
				p.atElem(path, i, "%s is not an IPv4 subnet", sn)
				continue
			case sn != sn.Masked():
				p.atElem(path, i, "%s has host bits set; did you mean %s?", sn, sn.Masked())
			}
			all = append(all, entry{name, path, i, sn.Masked(), p.loc.findElement(path, i)})
		}
	}
	sort.SliceStable(all, func(a, b int) bool {
		return all[a].pos.Line < all[b].pos.Line || all[a].pos.Line == all[b].pos.Line && all[a].pos.Col < all[b].pos.Col
	})
	for k, e := range all {
		for _, o := range all[:k] {
			if !o.net.Overlaps(e.net) {
				continue
			}
			switch {
			case o.zone != e.zone:
				p.atElem(e.path, e.i, "subnet %s overlaps %s of zone %q (line %d); a subnet belongs to one zone", e.net, o.net, o.zone, o.pos.Line)
			case o.net == e.net:
				p.atElem(e.path, e.i, "subnet %s is listed twice in zone %q (line %d)", e.net, e.zone, o.pos.Line)
			default:
				p.atElem(e.path, e.i, "subnet %s overlaps %s (line %d) in the same zone; list the wider one only", e.net, o.net, o.pos.Line)
			}
			break
		}
	}
}

// addImplicitZones gives every alias subnet no zone names a closed zone of its own,
// and fills Zones in a stable order.
func addImplicitZones(c *Config) {
	c.Zones = c.Zones[:0]
	for _, name := range sortedKeys(c.ZoneSet) {
		c.Zones = append(c.Zones, c.ZoneSet[name])
	}
	for _, a := range c.Aliases {
		if c.ZoneOf(a.Address.Addr()) != nil {
			continue
		}
		name := "auto-" + a.Name
		for n := 2; c.ZoneSet[name] != nil; n++ {
			name = "auto-" + a.Name + "-" + strconv.Itoa(n)
		}
		c.Zones = append(c.Zones, &Zone{Name: name, Subnets: []netip.Prefix{a.Subnet()}, Implicit: true})
	}
}

// ZoneOf returns the zone whose subnets hold a, or nil.
func (c *Config) ZoneOf(a netip.Addr) *Zone {
	for _, z := range c.Zones {
		for _, sn := range z.Subnets {
			if sn.Contains(a) {
				return z
			}
		}
	}
	return nil
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
