package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// buildDNS resolves [dns]: defaults filled, servers read as address:port.
func buildDNS(fd *fileDNS, c *Config, p *problems, set func(key ...string) bool) *DNS {
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
		LogQueries:  fd.LogQueries,
	}
	// Left out, the delay never passes a shorter timeout.
	d.Cache.StaleAnswerAfter = fd.Cache.StaleAnswerAfter.or(min(defaultStaleAnswerAfter, d.Timeout))
	if !set("dns", "max_inflight") {
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
		shadowsAlias(c, p, path+".name", h, d.Domain)
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
	} else if d.Cache.Size > maxCacheSize {
		p.at("dns.cache.size", "cache size %d is more than %d answers; each costs memory", d.Cache.Size, maxCacheSize)
	}
	if d.MaxFlight < 1 || d.MaxFlight > maxInflight {
		p.at("dns.max_inflight", "max_inflight must be 1-%d, not %d", maxInflight, d.MaxFlight)
	}
	checkDNSDurations(p, fd, d)
	return d
}

func checkDNSDurations(p *problems, fd *fileDNS, d *DNS) {
	ttl := span{time.Second, maxTTL}
	checkDuration(p, "dns.local_ttl", fd.LocalTTL, ttl, "1m")
	timeoutOK := checkDuration(p, "dns.timeout", fd.Timeout, span{10 * time.Millisecond, maxDNSTimeout}, "4s")
	checkDuration(p, "dns.cache.min_ttl", fd.Cache.MinTTL, span{0, maxTTL}, "0s")
	checkDuration(p, "dns.cache.max_ttl", fd.Cache.MaxTTL, ttl, "1d")
	checkDuration(p, "dns.cache.negative_ttl", fd.Cache.NegTTL, ttl, "1h")
	checkDuration(p, "dns.cache.serve_stale", fd.Cache.ServeStale, span{0, maxTTL}, "0s, off")
	if checkDuration(p, "dns.cache.stale_answer_after", fd.Cache.StaleAnswerAfter, span{0, maxDNSTimeout}, "1800ms") &&
		timeoutOK && d.Cache.StaleAnswerAfter > d.Timeout {
		p.at("dns.cache.stale_answer_after", "stale_answer_after (%s) is more than [dns] timeout (%s): the query is given up before a stale answer would be sent", fmtDuration(d.Cache.StaleAnswerAfter), fmtDuration(d.Timeout))
	}
	if d.Cache.MinTTL > d.Cache.MaxTTL && d.Cache.MaxTTL <= maxTTL {
		p.at("dns.cache.min_ttl", "min_ttl (%s) is more than max_ttl (%s)", fmtDuration(d.Cache.MinTTL), fmtDuration(d.Cache.MaxTTL))
	}
}

// shadowsAlias warns when a host takes the name the DNS role gives an alias
// (<alias>.<domain>) with another address: the name then answers with both.
func shadowsAlias(c *Config, p *problems, path string, h fileHost, domain string) {
	name := strings.ToLower(strings.TrimSuffix(h.Name, "."))
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if name != domain && !strings.HasSuffix(name, "."+domain) {
		name += "." + domain
	}
	for _, a := range c.Aliases {
		if a.Name+"."+domain == name && a.Address.Addr() != h.Address {
			p.warn(path, "%q is also the name of alias %q: %s will answer with both %s and %s", h.Name, a.Name, name, h.Address, a.Address.Addr())
		}
	}
}

// parseServers reads "a.b.c.d" or "a.b.c.d:port".
func parseServers(p *problems, path string, list []string) []netip.AddrPort {
	var out []netip.AddrPort
	for i, s := range list {
		ap, err := netip.ParseAddrPort(s)
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			ap, err = netip.AddrPortFrom(a, 53), nil
		}
		switch why := notAServer(ap.Addr()); {
		case err != nil:
			p.atElem(path, i, "%q is not an address or address:port, e.g. \"192.168.1.254\" or \"192.168.1.254:5353\"", s)
		case why != "":
			p.atElem(path, i, "%s cannot be a DNS server: it is %s", ap.Addr(), why)
		case ap.Port() == 0:
			p.atElem(path, i, "%q names port 0; leave the port out for 53", s)
		default:
			out = append(out, ap)
		}
	}
	return out
}

// notAServer says why no query could reach a, or "". Loopback and link-local
// upstreams are fine: a local resolver, a cloud's metadata resolver.
func notAServer(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsMulticast():
		return "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the limited broadcast address"
	}
	return ""
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
