package dns

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// specialDomains are answered NXDOMAIN here and never forwarded: mDNS names
// (RFC 6762), Tor names (RFC 7686), invalid. and test. (RFC 6761), and
// home.arpa. (RFC 8375) when the site's domain is something else.
var specialDomains = []string{"local.", "onion.", "invalid.", "test.", "home.arpa."}

// emptyZones are the reverse zones of RFC 6303 (and RFC 6598's shared
// address space): private and special ranges whose PTR lookups must not
// leak to the Internet's servers.
var emptyZones = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.2.0/24", "192.168.0.0/16", "198.51.100.0/24",
	"203.0.113.0/24", "255.255.255.255/32",
	"::/128", "::1/128", "fd00::/8", "fe80::/10", "2001:db8::/32",
)

// special is stage 2: the special-use names of RFC 6761 and friends,
// answered locally. Names inside the site's own domain, and names a
// conditional forward covers, pass through: the operator asked for them.
type special struct {
	domain string      // the site's domain, lower-case FQDN
	ttl    uint32      // TTL of the synthesized answers
	routes *routeTable // conditional forwarding domains
	// answers reports whether the local zone answers a reverse name;
	// holds whether names it answers lie below one.
	answers, holds func(netip.Prefix) bool
	next           stage
}

func (s *special) serve(ctx context.Context, req *request) *dns.Msg {
	name := req.name
	if inDomain(name, s.domain) || req.conditional(s.routes) != nil {
		return s.next.serve(ctx, req)
	}
	if inDomain(name, "localhost.") {
		req.by = bySpecial
		return s.localhost(req)
	}
	for _, d := range specialDomains {
		if inDomain(name, d) {
			req.by = bySpecial
			return s.negative(req, d, name == d)
		}
	}
	if p, ok := reversePrefix(name); ok {
		if m := s.reverse(req, p); m != nil {
			req.by = bySpecial
			return m
		}
	}
	return s.next.serve(ctx, req)
}

// localhost answers localhost. and its subdomains with the loopback
// addresses (RFC 6761 §6.3).
func (s *special) localhost(req *request) *dns.Msg {
	m := req.reply(dns.RcodeSuccess)
	m.Authoritative = true
	switch req.q.Qtype {
	case dns.TypeA, dns.TypeANY:
		m.Answer = append(m.Answer, aRecord(req.q.Name, netip.AddrFrom4([4]byte{127, 0, 0, 1}), s.ttl))
	}
	switch req.q.Qtype {
	case dns.TypeAAAA, dns.TypeANY:
		m.Answer = append(m.Answer, aRecord(req.q.Name, netip.IPv6Loopback(), s.ttl))
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{emptySOA("localhost.", s.ttl)}
	}
	return m
}

// reverse answers a reverse name inside an RFC 6303 zone the site does not
// serve: localhost for the loopback addresses, otherwise the empty zone's
// SOA at the apex and NXDOMAIN below it. It returns nil for names it leaves
// alone.
func (s *special) reverse(req *request, p netip.Prefix) *dns.Msg {
	var zone netip.Prefix
	for _, z := range emptyZones {
		if covers(z, p) {
			zone = z
			break
		}
	}
	if !zone.IsValid() || s.answers(p) {
		return nil
	}
	if p.IsSingleIP() && (p.Addr() == netip.IPv6Loopback() || p.Addr() == netip.AddrFrom4([4]byte{127, 0, 0, 1})) {
		m := req.reply(dns.RcodeSuccess)
		m.Authoritative = true
		if req.q.Qtype == dns.TypePTR || req.q.Qtype == dns.TypeANY {
			m.Answer = []dns.RR{ptrRecord(req.q.Name, "localhost.", s.ttl)}
		} else {
			m.Ns = []dns.RR{emptySOA(reverseName(roundUp(zone, p.Addr())), s.ttl)}
		}
		return m
	}
	apex := reverseName(roundUp(zone, p.Addr()))
	m := s.negative(req, apex, req.name == apex)
	if m.Rcode == dns.RcodeNameError && s.holds(p) {
		m.Rcode = dns.RcodeSuccess // the site's own reverse zones lie below: NODATA (RFC 8020)
	}
	return m
}

// negative answers inside an empty zone: SOA and NS at the apex, NODATA
// for other types there, NXDOMAIN below it; the SOA rides along so the
// client caches the answer (RFC 2308).
func (s *special) negative(req *request, apex string, atApex bool) *dns.Msg {
	if !atApex {
		m := req.reply(dns.RcodeNameError)
		m.Authoritative = true
		m.Ns = []dns.RR{emptySOA(apex, s.ttl)}
		return m
	}
	m := req.reply(dns.RcodeSuccess)
	m.Authoritative = true
	switch req.q.Qtype {
	case dns.TypeSOA:
		m.Answer = []dns.RR{emptySOA(req.q.Name, s.ttl)}
	case dns.TypeNS:
		m.Answer = []dns.RR{&dns.NS{Hdr: header(req.q.Name, dns.TypeNS, s.ttl), Ns: "localhost."}}
	default:
		m.Ns = []dns.RR{emptySOA(apex, s.ttl)}
	}
	return m
}

// emptySOA is the SOA RFC 6303 gives its empty zones.
func emptySOA(apex string, ttl uint32) *dns.SOA {
	return &dns.SOA{
		Hdr: header(apex, dns.TypeSOA, ttl), Ns: "localhost.", Mbox: "nobody.invalid.",
		Serial: 1, Refresh: 604800, Retry: 86400, Expire: 2419200, Minttl: ttl,
	}
}

func mustPrefixes(list ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(list))
	for i, s := range list {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}
