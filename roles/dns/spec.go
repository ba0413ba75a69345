package dns

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"gatewayd/config"
)

// spec is everything the DNS role takes from the config, in the role's own
// terms (lower-case FQDNs, resolved addresses). Set compares specs to know
// whether there is anything to do, and what.
type spec struct {
	Listen netip.Addr // the DNS alias's address
	Domain string
	TTL    uint32
	NSName string // the DNS alias's name in the zone

	Names  []nameSpec  // hosts, DHCP statics, aliases: the first one owning an address gives its PTR
	CNAMEs []cnameSpec // in config order
	Served []netip.Prefix
	// Allowed are the clients served: the zones whose allow list has "dns",
	// and this box's own aliases.
	Allowed []netip.Prefix

	Upstreams []netip.AddrPort
	Forward   []forwardSpec

	Cache       config.DNSCache
	Rebind      bool
	RebindAllow []string
	Timeout     time.Duration
	MaxFlight   int
}

type nameSpec struct {
	Name string
	Addr netip.Addr
}

type cnameSpec struct{ Name, Target string }

type forwardSpec struct {
	Domain  string
	Servers []netip.AddrPort
}

// specFrom derives the DNS role's spec from the config. It returns false
// when this box runs no DNS role: no [dns] section, or its alias is held by
// another box.
func specFrom(c *config.Config) (*spec, bool) {
	alias, held := c.RoleAlias("dns")
	if c.DNS == nil || alias == nil || !held {
		return nil, false
	}
	d := c.DNS
	domain := fqdn(d.Domain)
	sp := &spec{
		Listen:      alias.Address.Addr(),
		Domain:      domain,
		TTL:         uint32(d.LocalTTL.Duration / time.Second),
		NSName:      qualify(alias.Name, domain),
		Upstreams:   slices.Clone(d.UpstreamAddrs),
		Cache:       d.Cache,
		Rebind:      d.Rebind.Enabled(),
		Timeout:     d.Timeout.Duration,
		MaxFlight:   d.MaxFlight,
		Served:      servedSubnets(c),
		Allowed:     allowedClients(c),
		RebindAllow: fqdns(d.Rebind.Allow),
	}
	for _, h := range d.Hosts {
		sp.Names = append(sp.Names, nameSpec{qualify(h.Name, domain), h.Address.Unmap()})
	}
	if c.DHCP != nil {
		for _, st := range c.DHCP.Static {
			if label := leaseLabel(st.Hostname); label != "" && st.Address.IsValid() {
				sp.Names = append(sp.Names, nameSpec{label + "." + domain, st.Address.Unmap()})
			}
		}
	}
	for _, a := range c.Aliases {
		sp.Names = append(sp.Names, nameSpec{qualify(a.Name, domain), a.Address.Addr()})
	}
	for _, cn := range d.CNAMEs {
		sp.CNAMEs = append(sp.CNAMEs, cnameSpec{qualify(cn.Name, domain), target(cn.Target, domain)})
	}
	for _, f := range d.Forward {
		sp.Forward = append(sp.Forward, forwardSpec{fqdn(f.Domain), slices.Clone(f.ServerAddrs)})
	}
	return sp, true
}

// fqdn is name in lower case with the final dot.
func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

func fqdns(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, fqdn(n))
	}
	return out
}

// qualify puts a config name under the domain: "nas" and "nas.home.arpa"
// are both nas.home.arpa.; "printer.lab" is printer.lab.home.arpa.
func qualify(name, domain string) string {
	n := fqdn(name)
	if inDomain(n, domain) {
		return n
	}
	return n + domain
}

// target reads a CNAME target: a single label is a local name, a name
// ending in the domain is too, and any other dotted name is absolute
// ("www.example.com" stays www.example.com.).
func target(name, domain string) string {
	n := fqdn(name)
	if isSingleLabel(n) && n != domain {
		return n + domain
	}
	return n
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

// allowedClients are the subnets of the zones that allow the dns service,
// and this box's own alias addresses.
func allowedClients(c *config.Config) []netip.Prefix {
	var out []netip.Prefix
	for _, z := range c.Zones {
		if slices.Contains(z.Allow, "dns") {
			out = append(out, z.Subnets...)
		}
	}
	for _, a := range c.Held() {
		out = append(out, netip.PrefixFrom(a.Address.Addr(), a.Address.Addr().BitLen()))
	}
	return sortPrefixes(out)
}

// sortPrefixes sorts and removes duplicates, so equal configs give equal
// specs.
func sortPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}
