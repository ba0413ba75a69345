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
	// RFC 8767 suggests 1.8 s before a stale answer: most upstreams that
	// answer at all have by then.
	defaultStaleAnswerAfter = 1800 * time.Millisecond
)

// defaultManagement are the services that keep the admin's way into the box.
var defaultManagement = []string{"ssh", "ping"}

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
	// dns exist only with their role, and web only with metrics: opening port
	// 53 on every alias for a role that is not configured would be a hole,
	// not a service.
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
	if m := f.Gateway.Metrics; m.IsValid() && m.Port() != 0 {
		builtin = append(builtin, &Service{Name: "web", Ports: []PortSpec{{"tcp", m.Port(), m.Port()}}})
	}
	for _, s := range builtin {
		if _, ok := c.Services[s.Name]; ok {
			continue
		}
		s.Builtin = true
		c.Services[s.Name] = s
	}
}
