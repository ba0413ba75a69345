package config

import (
	"os"
	"time"
)

// Defaults every consumer can rely on after Load.
const (
	DefaultStateDir      = "/var/lib/gatewayd"
	DefaultControlSocket = "/run/gatewayd/control.sock"
	DefaultDomain        = "home.arpa"
)

// applyDefaults fills what the file left out; set reports whether the file
// wrote a key, for settings where zero means "off" rather than "default".
func applyDefaults(c *Config, set func(key ...string) bool) {
	g := &c.Gateway
	if g.Host == "" {
		g.Host, _ = os.Hostname()
	}
	if g.StateDir == "" {
		g.StateDir = DefaultStateDir
	}
	if g.ControlSocket == "" {
		g.ControlSocket = DefaultControlSocket
	}
	if !set("gateway", "probe_timeout") {
		g.ProbeTimeout.Duration = 500 * time.Millisecond
	}
	if !set("gateway", "announce_count") {
		g.AnnounceCount = 3
	}
	setDur(&g.AnnounceInterval, 500*time.Millisecond)
	for i := range c.Aliases {
		if c.Aliases[i].Label == "" {
			c.Aliases[i].Label = defaultLabel(c, i)
			c.Aliases[i].DefaultLabel = true
		}
	}
	if d := c.DHCP; d != nil {
		setDur(&d.LeaseTime, 12*time.Hour)
		setDur(&d.DeclineTime, 24*time.Hour)
		setDur(&d.OfferTime, time.Minute)
		for i := range d.Pools {
			p := &d.Pools[i]
			setDur(&p.LeaseTime, d.LeaseTime.Duration)
			setDur(&p.RenewTime, p.LeaseTime.Duration/2)
			setDur(&p.RebindTime, p.LeaseTime.Duration*7/8)
			if p.Domain == "" && c.DNS != nil {
				p.Domain = c.DNS.Domain
				if p.Domain == "" {
					p.Domain = DefaultDomain
				}
			}
		}
	}
	if d := c.DNS; d != nil {
		if d.Domain == "" {
			d.Domain = DefaultDomain
		}
		setDur(&d.LocalTTL, time.Minute)
		setDur(&d.Timeout, 4*time.Second)
		if d.MaxFlight == 0 {
			d.MaxFlight = 1024
		}
		if d.Cache.Size == 0 {
			d.Cache.Size = 10000
		}
		setDur(&d.Cache.MaxTTL, 24*time.Hour)
		setDur(&d.Cache.NegTTL, time.Hour)
	}
	if c.ZoneSet == nil {
		c.ZoneSet = map[string]*Zone{}
	}
	if c.Services == nil {
		c.Services = map[string]*Service{}
	}
	for name, z := range c.ZoneSet {
		z.Name = name
	}
	for name, s := range c.Services {
		s.Name = name
	}
	addBuiltinServices(c)
}

// setDur fills a zero duration with its default.
func setDur(d *Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

// addBuiltinServices defines the services gatewayd's own roles serve, unless the
// file redefines them.
func addBuiltinServices(c *Config) {
	alias := func(role string) string {
		switch {
		case role == "dhcp" && c.DHCP != nil:
			return c.DHCP.Alias
		case role == "dns" && c.DNS != nil:
			return c.DNS.Alias
		case role == "router" && c.Router != nil:
			return c.Router.Alias
		}
		return ""
	}
	// ssh without a router role, and ping, are served on every alias. dhcp and
	// dns exist only with their role: opening port 53 on every alias for a
	// role that is not configured would be a hole, not a service.
	builtin := []*Service{
		{Name: "ssh", Ports: []string{"tcp/22"}, Alias: alias("router")},
		{Name: "ping", Ports: []string{"icmp"}},
	}
	if c.DHCP != nil {
		builtin = append(builtin, &Service{Name: "dhcp", Ports: []string{"udp/67"}, Alias: alias("dhcp")})
	}
	if c.DNS != nil {
		builtin = append(builtin, &Service{Name: "dns", Ports: []string{"udp/53", "tcp/53"}, Alias: alias("dns")})
	}
	for _, s := range builtin {
		if _, ok := c.Services[s.Name]; ok {
			continue
		}
		s.Builtin = true
		c.Services[s.Name] = s
	}
}
