package daemon

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"gatewayd/aliases"
	"gatewayd/config"
	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
)

// desired is what this box should hold, one plain value per part, computed
// once from a resolved config by desire. Each part's Set takes only its own
// field; plan compares two desired values part by part, so a change to any
// field of any part shows in the plan without a list to keep in step.
type desired struct {
	Settings settings
	Aliases  []aliases.Alias
	// Adopt are the aliases (of Aliases) the file lets gatewayd take over
	// when their address is already on the NIC exactly (`adopt = true`).
	Adopt    []aliases.Alias
	Firewall *firewall.Ruleset
	Router   *router.Config // nil: the router alias is not held here
	DNS      *dns.Config    // nil: no DNS role here
	DHCP     *dhcp.Config   // nil: no DHCP role here
	// Holders says where each configured role lives, for plan's wording.
	Holders map[string]holder
	// Closed are the box's interfaces no zone names: everything arriving
	// on them is dropped. For plan and status.
	Closed []string
}

func (w *desired) closedOrNil() []string {
	if w == nil {
		return nil
	}
	return w.Closed
}

// sameParts reports whether two desired states ask the same of every part:
// what plan alone reads (where roles live, which interfaces are closed) does
// not make a reload a change.
func (w *desired) sameParts(o *desired) bool {
	return reflect.DeepEqual(w.Settings, o.Settings) && reflect.DeepEqual(w.Aliases, o.Aliases) &&
		reflect.DeepEqual(w.Adopt, o.Adopt) && w.Firewall.Render() == o.Firewall.Render() &&
		reflect.DeepEqual(w.Router, o.Router) && reflect.DeepEqual(w.DNS, o.DNS) && reflect.DeepEqual(w.DHCP, o.DHCP)
}

// settings are the box-wide values the controller applies itself.
type settings struct {
	Announce     aliases.Announce
	ProbeTimeout time.Duration
	LogLevel     string
}

// holder is where a role lives: its alias, that alias's address and host,
// and whether this box holds it.
type holder struct {
	Alias string
	Addr  netip.Addr
	Host  string
	Held  bool
}

// roleNames are the roles in apply order.
var roleNames = []string{"router", "dns", "dhcp"}

// desire turns a resolved config, and the facts read from the kernel, into
// this box's desired state. It reads nothing but its arguments.
func desire(c *config.Config, f facts) *desired {
	pol := policy(c, c.Holds, f)
	d := &desired{
		Settings: settings{Announce: announceOf(c), ProbeTimeout: c.Gateway.ProbeTimeout, LogLevel: c.Gateway.LogLevel},
		Aliases:  heldAliases(c, c.Holds),
		Adopt:    heldAliases(c, func(a config.Alias) bool { return a.Adopt && c.Holds(a) }),
		Firewall: firewall.Build(pol),
		Router:   routerConfig(c),
		DNS:      dnsConfig(c, pol),
		DHCP:     dhcpConfig(c),
		Holders:  map[string]holder{},
		Closed:   closedLinks(c, f),
	}
	for _, role := range roleNames {
		if a, held := c.RoleAlias(role); a != nil {
			d.Holders[role] = holder{Alias: a.Name, Addr: a.Address.Addr(), Host: a.Host, Held: held}
		}
	}
	return d
}

// releasing is the firewall while a reload from prev to next runs: next's,
// but still covering the aliases prev held that next gives to another host,
// until their roles have stopped and their addresses are gone. Nil when
// nothing moves away.
func releasing(prev, next *config.Config, f facts) *firewall.Ruleset {
	if prev == nil {
		return nil
	}
	held := map[netip.Addr]bool{}
	for _, a := range prev.Held() {
		held[a.Address.Addr()] = true
	}
	moving := false
	for _, a := range next.Aliases {
		if !next.Holds(a) && held[a.Address.Addr()] {
			moving = true
			break
		}
	}
	if !moving {
		return nil
	}
	return firewall.Build(policy(next, func(a config.Alias) bool { return next.Holds(a) || held[a.Address.Addr()] }, f))
}

// announceOf is the config's gratuitous ARP setting for the aliases package
// (announce_count 0 means none).
func announceOf(c *config.Config) aliases.Announce {
	n := c.Gateway.AnnounceCount
	if n == 0 {
		n = -1
	}
	return aliases.Announce{Count: n, Interval: c.Gateway.AnnounceInterval}
}

func heldAliases(c *config.Config, holds func(config.Alias) bool) []aliases.Alias {
	var out []aliases.Alias
	for _, a := range c.Aliases {
		if holds(a) {
			out = append(out, aliases.Alias{Name: a.Name, Prefix: a.Address, Label: a.Label, KeepLabel: a.DefaultLabel})
		}
	}
	return out
}

// policy resolves the firewall's input: the aliases held (by holds), what
// every zone may reach on them, the WAN port and NAT, and the management
// access to the NIC's own addresses.
func policy(c *config.Config, holds func(config.Alias) bool, f facts) firewall.Policy {
	p := firewall.Policy{Interface: c.Gateway.Interface, Management: slices.Clone(c.Gateway.Management)}
	for _, a := range c.Aliases {
		if holds(a) {
			p.Aliases = append(p.Aliases, firewall.AliasInfo{Name: a.Name, Addr: a.Address.Addr()})
		}
	}
	manage := managementZones(c, f)
	for _, z := range c.Zones {
		info := zoneInfo(c, z, holds)
		if manage[z.Name] {
			info.Manage = managementPorts(c)
		}
		p.Zones = append(p.Zones, info)
	}
	if own := ownElsewhere(c, f); len(own) > 0 && len(c.Gateway.ManagementZones) == 0 {
		p.Zones = append(p.Zones, firewall.ZoneInfo{Name: uniqueZone(c, "auto-own"), Subnets: own, Implicit: true, Manage: managementPorts(c)})
	}
	if a, _ := c.RoleAlias("router"); a != nil && holds(*a) {
		p.Masquerade = c.Router.Masquerade
		p.SNAT = a.Address.Addr()
	}
	if up := c.Upstream; up != nil {
		p.Upstream = &firewall.Uplink{Interface: up.Interface, AcceptRA: up.AcceptRA}
		if !up.DHCP {
			p.Upstream.Addr = up.Address.Addr()
		}
	}
	return p
}

// managementZones are the zones from which the management services reach
// the NIC's own addresses: the file's list, or else the zones holding one
// of those addresses (the admin came in through one of them).
func managementZones(c *config.Config, f facts) map[string]bool {
	out := map[string]bool{}
	if len(c.Gateway.ManagementZones) > 0 {
		for _, z := range c.Gateway.ManagementZones {
			out[z] = true
		}
		return out
	}
	for _, own := range f.Own {
		if z := c.ZoneOf(own.Addr()); z != nil {
			out[z.Name] = true
		}
	}
	return out
}

// ownElsewhere are the subnets of the NIC's own addresses that no zone
// covers: they get a closed zone of their own that keeps the management
// services, so the admin on the primary address's subnet is never locked
// out (a subnet that overlaps a zone is left to that zone).
func ownElsewhere(c *config.Config, f facts) []netip.Prefix {
	var out []netip.Prefix
	for _, own := range f.Own {
		sn := own.Masked()
		overlaps := slices.ContainsFunc(c.Zones, func(z *config.Zone) bool {
			return slices.ContainsFunc(z.Subnets, sn.Overlaps)
		})
		if !overlaps && !slices.Contains(out, sn) {
			out = append(out, sn)
		}
	}
	return out
}

// uniqueZone is name, or name-2, name-3… when a zone already has it.
func uniqueZone(c *config.Config, name string) string {
	try := name
	for n := 2; c.Zone(try) != nil; n++ {
		try = fmt.Sprintf("%s-%d", name, n)
	}
	return try
}

// managementPorts are the ports of the management services.
func managementPorts(c *config.Config) []firewall.ServicePort {
	var out []firewall.ServicePort
	for _, name := range c.Gateway.Management {
		svc := c.Services[name]
		if svc == nil {
			continue
		}
		for _, p := range svc.Ports {
			out = append(out, firewall.ServicePort{Service: name, Port: firewall.PortRange(p)})
		}
	}
	return out
}

// closedLinks are the box's interfaces that no zone names: every packet
// arriving on them is dropped.
func closedLinks(c *config.Config, f facts) []string {
	named := map[string]bool{"lo": true, c.Gateway.Interface: true}
	if c.Upstream != nil {
		named[c.Upstream.Interface] = true
	}
	for _, z := range c.Zones {
		for _, i := range z.Interfaces {
			named[i] = true
		}
	}
	var out []string
	for _, l := range f.Links {
		if !named[l] {
			out = append(out, l)
		}
	}
	return out
}

// zoneInfo resolves what a zone may reach: each allowed service on the
// addresses of this box that serve it (its alias when held here, every held
// alias for a service without one). A service whose alias another box holds
// opens nothing here.
func zoneInfo(c *config.Config, z *config.Zone, holds func(config.Alias) bool) firewall.ZoneInfo {
	info := firewall.ZoneInfo{Name: z.Name, Subnets: slices.Clone(z.Subnets), Interfaces: slices.Clone(z.Interfaces),
		Implicit: z.Implicit, Forward: slices.Clone(z.Forward)}
	seen := map[firewall.Access]bool{}
	for _, name := range z.Allow {
		svc := c.Services[name]
		if svc == nil {
			continue
		}
		for _, addr := range serviceAddrs(c, svc, holds) {
			for _, p := range svc.Ports {
				a := firewall.Access{Service: name, Addr: addr, Port: firewall.PortRange(p), Every: svc.Alias == ""}
				if !seen[a] {
					seen[a] = true
					info.Access = append(info.Access, a)
				}
			}
		}
	}
	return info
}

func serviceAddrs(c *config.Config, svc *config.Service, holds func(config.Alias) bool) []netip.Addr {
	var out []netip.Addr
	if svc.Alias == "" {
		for _, a := range c.Aliases {
			if holds(a) {
				out = append(out, a.Address.Addr())
			}
		}
		return out
	}
	if a := c.Alias(svc.Alias); a != nil && holds(*a) {
		out = append(out, a.Address.Addr())
	}
	return out
}

// routerConfig is the router role's value while the router alias is held
// here: forwarding on the NIC, the default route (via the upstream on the
// alias wire, or the WAN port's) and the static ones.
func routerConfig(c *config.Config) *router.Config {
	if _, held := c.RoleAlias("router"); !held {
		return nil
	}
	nic := c.Gateway.Interface
	rc := &router.Config{Interface: nic}
	if up := c.Router.Upstream; up.IsValid() {
		rc.Routes = append(rc.Routes, router.Route{To: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: up, Interface: nic})
	}
	for _, r := range c.Router.Routes {
		rc.Routes = append(rc.Routes, router.Route{To: r.To.Masked(), Via: r.Via, Interface: nic})
	}
	if up := c.Upstream; up != nil {
		rc.Uplink = &router.Uplink{Interface: up.Interface, Address: up.Address, Gateway: up.Gateway,
			DHCP: up.DHCP, Hostname: c.Gateway.Host, AcceptRA: up.AcceptRA}
	}
	return rc
}

// dnsConfig is the DNS role's value while its alias is held here. The
// clients it serves are the zones the firewall lets reach the dns service,
// from the same resolved policy.
func dnsConfig(c *config.Config, pol firewall.Policy) *dns.Config {
	alias, held := c.RoleAlias("dns")
	if c.DNS == nil || alias == nil || !held {
		return nil
	}
	d := c.DNS
	domain := dns.FQDN(d.Domain)
	dc := &dns.Config{
		Listen:    alias.Address.Addr(),
		Domain:    domain,
		TTL:       uint32(d.LocalTTL / time.Second),
		NSName:    dns.Qualify(alias.Name, domain),
		Upstreams: slices.Clone(d.Upstreams),
		Cache: dns.Cache{Size: d.Cache.Size, MinTTL: d.Cache.MinTTL, MaxTTL: d.Cache.MaxTTL,
			NegTTL: d.Cache.NegTTL, ServeStale: d.Cache.ServeStale, StaleAnswer: d.Cache.StaleAnswerAfter},
		Rebind:     d.Rebind,
		Timeout:    d.Timeout,
		MaxFlight:  d.MaxFlight,
		LogQueries: d.LogQueries,
		Served:     servedSubnets(c),
		Allowed:    allowedClients(c, pol),
	}
	for _, dom := range d.RebindAllow {
		dc.RebindAllow = append(dc.RebindAllow, dns.FQDN(dom))
	}
	for _, h := range d.Hosts {
		dc.Names = append(dc.Names, dns.Name{Name: dns.Qualify(h.Name, domain), Addr: h.Address.Unmap()})
	}
	if c.DHCP != nil {
		for _, st := range c.DHCP.Static {
			if label := dns.LeaseLabel(st.Hostname); label != "" && st.Address.IsValid() {
				dc.Names = append(dc.Names, dns.Name{Name: label + "." + domain, Addr: st.Address.Unmap()})
			}
		}
	}
	for _, a := range c.Aliases {
		dc.Names = append(dc.Names, dns.Name{Name: dns.Qualify(a.Name, domain), Addr: a.Address.Addr()})
	}
	for _, cn := range d.CNAMEs {
		dc.CNAMEs = append(dc.CNAMEs, dns.CNAME{Name: dns.Qualify(cn.Name, domain), Target: dns.CNAMETarget(cn.Target, domain)})
	}
	for _, f := range d.Forward {
		dc.Forward = append(dc.Forward, dns.Forward{Domain: dns.FQDN(f.Domain), Servers: slices.Clone(f.Servers)})
	}
	return dc
}

// servedSubnets are the subnets whose reverse zones the site answers: every
// alias's and every zone's, and the DHCP pools' (relayed ones included).
func servedSubnets(c *config.Config) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range c.Aliases {
		out = append(out, a.Subnet())
	}
	for _, z := range c.Zones {
		out = append(out, z.Subnets...)
	}
	if c.DHCP != nil {
		for _, p := range c.DHCP.Pools {
			if p.Subnet.IsValid() {
				out = append(out, p.Subnet.Masked())
			}
		}
	}
	return sortPrefixes(out)
}

// allowedClients are the subnets of the zones that may reach the dns
// service, and this box's own alias addresses.
func allowedClients(c *config.Config, pol firewall.Policy) []netip.Prefix {
	var out []netip.Prefix
	for _, z := range pol.Zones {
		if slices.ContainsFunc(z.Access, func(a firewall.Access) bool { return a.Service == "dns" }) {
			out = append(out, z.Subnets...)
		}
	}
	for _, a := range c.Held() {
		out = append(out, netip.PrefixFrom(a.Address.Addr(), a.Address.Addr().BitLen()))
	}
	return sortPrefixes(out)
}

// sortPrefixes sorts and removes duplicates, so equal configs give equal
// values.
func sortPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}

// DHCPConfig is the DHCP role's value for c on this box, nil when the role
// does not run here: for the commands that work on leases with the daemon
// stopped.
func DHCPConfig(c *config.Config) *dhcp.Config { return dhcpConfig(c) }

// dhcpConfig is the DHCP role's value while its alias is held here.
func dhcpConfig(c *config.Config) *dhcp.Config {
	alias, held := c.RoleAlias("dhcp")
	if c.DHCP == nil || alias == nil || !held {
		return nil
	}
	d := c.DHCP
	dc := &dhcp.Config{
		Interface: c.Gateway.Interface, Server: alias.Address,
		Authoritative: d.Authoritative, DeclineTime: d.DeclineTime, OfferTime: d.OfferTime,
		ProbeBeforeOffer: d.ProbeBeforeOffer,
	}
	for _, p := range d.Pools {
		dp := dhcp.Pool{
			Range: dhcp.Range{Start: p.Range.Start, End: p.Range.End}, Subnet: p.Subnet, Relayed: p.Relayed,
			Router: p.Router, DNS: slices.Clone(p.DNS), NTP: slices.Clone(p.NTP), Domain: p.Domain, Broadcast: p.Broadcast,
			LeaseTime: p.LeaseTime, RenewTime: p.RenewTime, RebindTime: p.RebindTime,
		}
		for _, r := range p.Routes {
			dp.Routes = append(dp.Routes, dhcp.Route{To: r.To, Via: r.Via})
		}
		for _, o := range p.Options {
			dp.Options = append(dp.Options, dhcp.Option{Code: uint8(o.Code), Value: slices.Clone(o.Value), Always: o.Always})
		}
		dc.Pools = append(dc.Pools, dp)
	}
	for _, s := range d.Static {
		dc.Static = append(dc.Static, dhcp.Static{MAC: slices.Clone(s.MAC), ClientID: s.ClientID, Address: s.Address, Hostname: s.Hostname})
	}
	return dc
}
