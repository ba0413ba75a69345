package config

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
)

// UpstreamZone is the forward target meaning "anything outside every zone".
const UpstreamZone = "upstream"

// reservedZones are names a zone cannot take: the forward target, and the
// pseudo-zones the metrics count what no zone claims ("closed") and the
// link's own traffic ("link") under.
var reservedZones = []string{UpstreamZone, "closed", "link"}

// buildServices fills c.Services with the file's services and the built-in ones.
func buildServices(f *file, c *Config, p *problems, aliases map[string]*Alias) {
	c.Services = map[string]*Service{}
	for _, name := range sortedKeys(f.Service) {
		fs := f.Service[name]
		s := &Service{Name: name, Alias: fs.Alias}
		c.Services[name] = s
		path := "service." + name
		if !nameRE.MatchString(name) {
			p.at(path, "%q is not a valid service name: lowercase letters, digits, '-' and '_'", name)
		}
		if len(fs.Ports) == 0 {
			p.at(path, "ports is missing: set ports = [\"tcp/8080\"]")
		}
		for i, port := range fs.Ports {
			spec, err := ParsePortSpec(port)
			if err != nil {
				p.atElem(path+".ports", i, "%v", err)
				continue
			}
			s.Ports = append(s.Ports, spec)
		}
		if s.Alias != "" && aliases[s.Alias] == nil {
			p.at(path+".alias", "alias %q does not exist; defined aliases: %s", s.Alias, names(aliases))
		}
	}
	addBuiltinServices(f, c)
}

// buildZones fills c.Zones with the file's zones, in name order.
func buildZones(f *file, c *Config, p *problems) {
	if zones := sortedKeys(f.Zones); len(zones) > maxEntries {
		p.at("zone."+zones[maxEntries], "more than %d zones; gatewayd takes at most %d", maxEntries, maxEntries)
		return
	}
	for _, name := range sortedKeys(f.Zones) {
		z := f.Zones[name]
		c.Zones = append(c.Zones, &Zone{Name: name, Subnets: slices.Clone(z.Subnets), Interfaces: slices.Clone(z.Interfaces),
			Allow: slices.Clone(z.Allow), Forward: slices.Clone(z.Forward)})
		path := "zone." + name
		if !nameRE.MatchString(name) || slices.Contains(reservedZones, name) {
			p.at(path, "%q is not a valid zone name: lowercase letters, digits, '-' and '_', and not %q, %q or %q", name, reservedZones[0], reservedZones[1], reservedZones[2])
		}
		for i, s := range z.Allow {
			checkServiceName(c, p, path+".allow", i, s)
		}
		for i, to := range z.Forward {
			if to != UpstreamZone && f.Zones[to] == nil {
				p.atElem(path+".forward", i, "unknown zone %q; forward names zones (%s) or %q", to, names(f.Zones), UpstreamZone)
			}
		}
	}
	validateZoneSubnets(f, p)
	validateZoneInterfaces(f, c, p)
}

// checkServiceName reports the i-th element of the list at path when it
// names no service; a built-in that exists only with its setting says so.
func checkServiceName(c *Config, p *problems, path string, i int, s string) {
	switch {
	case c.Services[s] != nil:
	case s == "dhcp" || s == "dns":
		p.atElem(path, i, "service %q needs the [%s] role, which this file does not configure", s, s)
	case s == "web" && c.Gateway.Metrics.IsValid():
		// metrics is written but refused (port 0): that error says it.
	case s == "web":
		p.atElem(path, i, "service \"web\" needs [gateway] metrics, which this file does not set: the web page and the metrics listen there, and web opens its port")
	default:
		p.atElem(path, i, "unknown service %q; known services: %s (define others under [service.<name>])", s, names(c.Services))
	}
}

// validateManagement checks [gateway] management and management_zones.
func validateManagement(f *file, c *Config, p *problems) {
	for i, s := range f.Gateway.Management {
		checkServiceName(c, p, "gateway.management", i, s)
	}
	for i, z := range f.Gateway.ManagementZones {
		if f.Zones[z] == nil {
			p.atElem("gateway.management_zones", i, "unknown zone %q; management_zones names zones (%s)", z, names(f.Zones))
		}
	}
}

// validateZoneInterfaces checks the interfaces zones name: each in one zone,
// and neither the alias NIC (split into zones by subnet) nor the WAN port
// (the upstream zone itself). A repeat is reported where it is written later.
func validateZoneInterfaces(f *file, c *Config, p *problems) {
	type entry struct {
		zone, path, ifname string
		i                  int
		pos                position
	}
	var all []entry
	for _, name := range sortedKeys(f.Zones) {
		path := "zone." + name + ".interfaces"
		for i, ifname := range f.Zones[name].Interfaces {
			all = append(all, entry{name, path, ifname, i, p.loc.findElement(path, i)})
		}
	}
	sort.SliceStable(all, func(a, b int) bool {
		return all[a].pos.Line < all[b].pos.Line || all[a].pos.Line == all[b].pos.Line && all[a].pos.Col < all[b].pos.Col
	})
	first := map[string]entry{}
	for _, e := range all {
		switch o, dup := first[e.ifname]; {
		case !validIfname(e.ifname):
			p.atElem(e.path, e.i, "%s", ifnameProblem(e.ifname))
		case e.ifname == c.Gateway.Interface:
			p.atElem(e.path, e.i, "%s is [gateway] interface, the NIC that carries the aliases: its traffic is split into zones by subnet; list the subnets instead", e.ifname)
		case c.Upstream != nil && e.ifname == c.Upstream.Interface:
			p.atElem(e.path, e.i, "%s is the [upstream] interface: it is the upstream zone (forward = [\"upstream\"] reaches it), not part of a zone", e.ifname)
		case e.ifname == "lo":
			p.atElem(e.path, e.i, "lo is the loopback interface, which the firewall always accepts; a zone cannot name it")
		case dup && o.zone == e.zone:
			p.atElem(e.path, e.i, "interface %s is listed twice in zone %q (line %d)", e.ifname, e.zone, o.pos.Line)
		case dup:
			p.atElem(e.path, e.i, "interface %s is also in zone %q (line %d); an interface belongs to one zone", e.ifname, o.zone, o.pos.Line)
		default:
			first[e.ifname] = e
		}
	}
}

// validateZoneSubnets checks every zone subnet and that no two overlap. An
// overlap is reported once, at the subnet written later in the file.
func validateZoneSubnets(f *file, p *problems) {
	type entry struct {
		zone, path string
		i          int
		net        netip.Prefix
		pos        position
	}
	var all []entry
	for _, name := range sortedKeys(f.Zones) {
		path := "zone." + name + ".subnets"
		for i, sn := range f.Zones[name].Subnets {
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
	if len(all) > maxEntries { // the overlap check compares every pair
		e := all[maxEntries]
		p.atElem(e.path, e.i, "more than %d zone subnets in all; gatewayd takes at most %d", maxEntries, maxEntries)
		return
	}
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

// addImplicitZones gives every alias subnet no zone names a closed zone of its
// own, after the file's zones.
func addImplicitZones(c *Config) {
	for _, a := range c.Aliases {
		if c.ZoneOf(a.Address.Addr()) != nil {
			continue
		}
		name := "auto-" + a.Name
		for n := 2; c.Zone(name) != nil; n++ {
			name = "auto-" + a.Name + "-" + strconv.Itoa(n)
		}
		c.Zones = append(c.Zones, &Zone{Name: name, Subnets: []netip.Prefix{a.Subnet()}, Implicit: true})
	}
}

// Zone returns the zone with the name, file-defined or implicit, or nil.
func (c *Config) Zone(name string) *Zone {
	for _, z := range c.Zones {
		if z.Name == name {
			return z
		}
	}
	return nil
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
