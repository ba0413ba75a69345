package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// buildDNS resolves [dns]: defaults filled, servers read as address:port.
func buildDNS(fd *fileDNS, p *problems) *DNS {
	if fd == nil {
		return nil
	}
	d := &DNS{
		Alias:    fd.Alias,
		Domain:   orDefault(fd.Domain, DefaultDomain),
		LocalTTL: fd.LocalTTL.or(defaultLocalTTL),
		Cache: DNSCache{
			Size:       fd.Cache.Size,
			MinTTL:     fd.Cache.MinTTL.Duration,
			MaxTTL:     fd.Cache.MaxTTL.or(defaultMaxTTL),
			NegTTL:     fd.Cache.NegTTL.or(defaultNegTTL),
			ServeStale: fd.Cache.ServeStale.Duration,
		},
		Rebind:      fd.Rebind.Protect == nil || *fd.Rebind.Protect,
		RebindAllow: slices.Clone(fd.Rebind.Allow),
		Timeout:     fd.Timeout.or(defaultTimeout),
		MaxFlight:   fd.MaxFlight,
	}
	if d.MaxFlight == 0 {
		d.MaxFlight = defaultMaxFlight
	}
	if d.Cache.Size == 0 {
		d.Cache.Size = defaultCacheSize
	}
	if !validDomain(d.Domain) {
		p.at("dns.domain", "%q is not a valid domain name: dot-separated labels of letters, digits and '-', e.g. \"home.arpa\"", d.Domain)
	}
	d.Upstreams = parseServers(p, "dns.upstreams", fd.Upstreams)
	for i, h := range fd.Hosts {
		d.Hosts = append(d.Hosts, Host(h))
		path := fmt.Sprintf("dns.host[%d]", i)
		if !validDomain(h.Name) {
			p.at(path+".name", "%q is not a valid host name", h.Name)
		}
		if !h.Address.IsValid() {
			p.at(path, "address is missing: set address = \"192.168.1.20\"")
		}
	}
	for i, cn := range fd.CNAMEs {
		d.CNAMEs = append(d.CNAMEs, CNAME(cn))
		path := fmt.Sprintf("dns.cname[%d]", i)
		if !validDomain(cn.Name) || !validDomain(cn.Target) {
			p.at(path, "cname needs a valid name and target (got %q → %q)", cn.Name, cn.Target)
		}
	}
	for i, f := range fd.Forward {
		path := fmt.Sprintf("dns.forward[%d]", i)
		if !validDomain(f.Domain) {
			p.at(path+".domain", "%q is not a valid domain name", f.Domain)
		}
		if len(f.Servers) == 0 {
			p.at(path, "servers is missing: set servers = [\"10.0.0.53\"]")
		}
		d.Forward = append(d.Forward, Forward{Domain: f.Domain, Servers: parseServers(p, path+".servers", f.Servers)})
	}
	for i, dom := range d.RebindAllow {
		if !validDomain(dom) {
			p.atElem("dns.rebind.allow", i, "%q is not a valid domain name", dom)
		}
	}
	if d.Cache.Size < 0 {
		p.at("dns.cache.size", "cache size must be 0 or more")
	}
	return d
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
