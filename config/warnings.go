package config

import (
	"fmt"
	"slices"
)

// siteWarnings reports what in a valid file leaves a role, a service or a
// subnet without the reach it was meant to have. It runs on the resolved
// model, implicit zones included.
func siteWarnings(f *file, c *Config, p *problems) {
	if len(f.Zones) == 0 {
		warnNoZones(f, p)
	} else {
		warnUnservedRoles(f, c, p)
		warnImplicitZones(c, p)
	}
	warnClosedServices(f, c, p)
	warnUpstreamOnWire(c, p)
	warnMetrics(c, p)
}

// allowed reports whether some zone allows the service.
func (c *Config) allowed(service string) bool {
	for _, z := range c.Zones {
		if slices.Contains(z.Allow, service) {
			return true
		}
	}
	return false
}

// warnNoZones: without a zone every alias subnet is closed, so the roles
// answer nobody; the file is valid (a box being set up), but it says so.
func warnNoZones(f *file, p *problems) {
	var roles []string
	if f.DHCP != nil {
		roles = append(roles, "DHCP")
	}
	if f.DNS != nil {
		roles = append(roles, "DNS")
	}
	who := "no host reaches this box"
	switch len(roles) {
	case 1:
		who = roles[0] + " serves nobody"
	case 2:
		who = "DHCP and DNS serve nobody"
	}
	p.warn("gateway", "the file has no zone, so %s: every alias subnet gets a closed zone of its own, which reaches no service of this box and is routed nowhere; add [zone.<name>] tables with the subnets and what each may reach (allow, forward)", who)
}

// warnUnservedRoles: a DHCP or DNS role no zone may reach answers nobody.
func warnUnservedRoles(f *file, c *Config, p *problems) {
	for _, role := range []struct {
		key, name string
		set       bool
	}{{"dhcp", "DHCP", f.DHCP != nil}, {"dns", "DNS", f.DNS != nil}} {
		if role.set && !c.allowed(role.key) {
			p.warn(role.key, "the %s role serves no zone: no zone allows %q, so the firewall lets no client reach it; add %q to the allow of the zones it serves", role.name, role.key, role.key)
		}
	}
}

// warnImplicitZones names each alias whose subnet no zone names, and the
// closed zone it gets.
func warnImplicitZones(c *Config, p *problems) {
	for i, a := range c.Aliases {
		if z := c.ZoneOf(a.Address.Addr()); z != nil && z.Implicit {
			p.warn(fmt.Sprintf("alias[%d].address", i), "alias %q is on %s, which no zone names: it gets the closed zone %q, which reaches no service of this box and is routed nowhere; add %s to a zone's subnets",
				a.Name, a.Subnet(), z.Name, a.Subnet())
		}
	}
}

// warnClosedServices names each [service.X] no zone allows and that is no
// management service: its ports are opened nowhere. A service whose alias
// another box holds is not warned about: in a site file shared by several
// boxes it is served by the box holding the alias, as a role is.
func warnClosedServices(f *file, c *Config, p *problems) {
	for _, name := range sortedKeys(f.Service) {
		if c.servedElsewhere(name) {
			continue
		}
		if !c.allowed(name) && !slices.Contains(c.Gateway.Management, name) {
			p.warn("service."+name, "service %q is opened to no zone: no zone allows it, so its ports stay closed; add %q to the allow of the zones that use it", name, name)
		}
	}
}

// servedElsewhere reports whether the service is bound to an alias another
// box holds.
func (c *Config) servedElsewhere(service string) bool {
	s := c.Services[service]
	if s == nil || s.Alias == "" {
		return false
	}
	a := c.Alias(s.Alias)
	return a != nil && !c.Holds(*a)
}

// warnUpstreamOnWire: an upstream router on the alias wire sits inside a
// zone, and what it sends to that zone's hosts never passes this box.
func warnUpstreamOnWire(c *Config, p *problems) {
	if c.Upstream != nil || c.Router == nil || !c.Router.Upstream.IsValid() {
		return
	}
	if z := c.ZoneOf(c.Router.Upstream); z != nil {
		p.warn("router.upstream", "the upstream router %s is inside zone %s's subnet: it gets that zone's rights, and traffic it delivers on the wire reaches %s hosts without crossing this box's firewall",
			c.Router.Upstream, z.Name, z.Name)
	}
}

// warnMetrics: metrics on an address other boxes can reach, but no zone the
// firewall opens it to.
func warnMetrics(c *Config, p *problems) {
	m := c.Gateway.Metrics
	if !m.IsValid() || m.Addr().IsLoopback() || c.allowed("web") || slices.Contains(c.Gateway.Management, "web") {
		return
	}
	where := m.String()
	if m.Addr().IsUnspecified() {
		where = fmt.Sprintf("every address (%s)", m)
	}
	p.warn("gateway.metrics", `metrics listens on %s, but no zone allows "web": the firewall opens port %d only to zones that allow "web", so only this box reaches it; add "web" to a zone's allow, or listen on 127.0.0.1:%d`,
		where, m.Port(), m.Port())
}
