package config

import "time"

// Defaults every consumer can rely on after Load.
const (
	DefaultStateDir      = "/var/lib/gatewayd"
	DefaultControlSocket = "/run/gatewayd/control.sock"
	DefaultDomain        = "home.arpa"
)

// Defaults of settings the file may leave out; the model always holds a value.
const (
	defaultProbeTimeout     = 500 * time.Millisecond
	defaultAnnounceCount    = 3
	defaultAnnounceInterval = 500 * time.Millisecond

	defaultLeaseTime   = 12 * time.Hour
	defaultDeclineTime = 24 * time.Hour
	defaultOfferTime   = time.Minute

	defaultLocalTTL  = time.Minute
	defaultTimeout   = 4 * time.Second
	defaultMaxFlight = 1024
	defaultCacheSize = 10000
	defaultMaxTTL    = 24 * time.Hour
	defaultNegTTL    = time.Hour
)

// addBuiltinServices defines the services gatewayd's own roles serve, unless the
// file redefines them.
func addBuiltinServices(f *file, c *Config) {
	var router, dhcp, dns string
	if f.Router != nil {
		router = f.Router.Alias
	}
	if f.DHCP != nil {
		dhcp = f.DHCP.Alias
	}
	if f.DNS != nil {
		dns = f.DNS.Alias
	}
	// ssh without a router role, and ping, are served on every alias. dhcp and
	// dns exist only with their role: opening port 53 on every alias for a
	// role that is not configured would be a hole, not a service.
	builtin := []*Service{
		{Name: "ssh", Ports: []PortSpec{{"tcp", 22, 22}}, Alias: router},
		{Name: "ping", Ports: []PortSpec{{Proto: "icmp"}}},
	}
	if f.DHCP != nil {
		builtin = append(builtin, &Service{Name: "dhcp", Ports: []PortSpec{{"udp", 67, 67}}, Alias: dhcp})
	}
	if f.DNS != nil {
		builtin = append(builtin, &Service{Name: "dns", Ports: []PortSpec{{"udp", 53, 53}, {"tcp", 53, 53}}, Alias: dns})
	}
	for _, s := range builtin {
		if _, ok := c.Services[s.Name]; ok {
			continue
		}
		s.Builtin = true
		c.Services[s.Name] = s
	}
}
