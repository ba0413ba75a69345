package config

import "net/netip"

// Held returns the aliases this box holds: those without a host, and those whose
// host is this box's [gateway] host.
func (c *Config) Held() []Alias {
	var out []Alias
	for _, a := range c.Aliases {
		if c.Holds(a) {
			out = append(out, a)
		}
	}
	return out
}

// Holds reports whether this box holds the alias.
func (c *Config) Holds(a Alias) bool { return a.Host == "" || a.Host == c.Gateway.Host }

// Alias returns the alias with the name, or nil.
func (c *Config) Alias(name string) *Alias {
	for i := range c.Aliases {
		if c.Aliases[i].Name == name {
			return &c.Aliases[i]
		}
	}
	return nil
}

// RoleAlias returns the alias of a role ("router", "dhcp", "dns") and whether this
// box holds it; nil when the role is not configured.
func (c *Config) RoleAlias(role string) (*Alias, bool) {
	var name string
	switch {
	case role == "router" && c.Router != nil:
		name = c.Router.Alias
	case role == "dhcp" && c.DHCP != nil:
		name = c.DHCP.Alias
	case role == "dns" && c.DNS != nil:
		name = c.DNS.Alias
	default:
		return nil, false
	}
	a := c.Alias(name)
	if a == nil {
		return nil, false
	}
	return a, c.Holds(*a)
}

// RoleAddr is the address of a role's alias, invalid when not configured.
func (c *Config) RoleAddr(role string) netip.Addr {
	if a, _ := c.RoleAlias(role); a != nil {
		return a.Address.Addr()
	}
	return netip.Addr{}
}
