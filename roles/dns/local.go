package dns

import (
	"context"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// maxChain bounds CNAME chains followed for one answer.
const maxChain = 8

// localName is one owner name of the local zone: addresses or a CNAME.
type localName struct {
	addrs []netip.Addr
	cname string // target, lower-case FQDN
}

// localZone is stage 3: the site's own names under the configured domain
// (config hosts, DHCP static hostnames, the aliases, CNAMEs, and the DHCP
// lease names), the reverse zones of the site's subnets, and bare
// single-label names, which are looked up under the domain (dnsmasq's
// expand-hosts). Its answers are authoritative; its negative answers carry
// the SOA. Everything but the lease names is fixed when Set builds it.
type localZone struct {
	domain  string // lower-case FQDN
	ttl     uint32
	soa     *dns.SOA
	nsName  string
	names   map[string]*localName
	ents    map[string]bool       // empty non-terminals
	ptrs    map[netip.Addr]string // address → name, from the config
	reverse []netip.Prefix        // subnets whose reverse zones are answered here
	leases  *leaseTable
	routes  *routeTable // forward domains below ours take precedence
	next    stage
}

func (z *localZone) serve(ctx context.Context, req *request) *dns.Msg {
	name := req.name
	if r := req.conditional(z.routes); r != nil && len(r.domain) > len(z.domain) && inDomain(name, z.domain) {
		return z.next.serve(ctx, req) // delegated to a forward below our domain
	}
	switch {
	case inDomain(name, z.domain):
		req.by = byLocal
		return z.answer(ctx, req)
	case isSingleLabel(name):
		return z.bare(ctx, req)
	}
	if p, ok := reversePrefix(name); ok {
		if m := z.reverseAnswer(ctx, req, p); m != nil {
			req.by = byLocal
			return m
		}
	}
	return z.next.serve(ctx, req)
}

// answer answers a name inside the local domain.
func (z *localZone) answer(ctx context.Context, req *request) *dns.Msg {
	m := req.reply(dns.RcodeSuccess)
	m.Authoritative = true
	qt := req.q.Qtype
	if req.name == z.domain {
		switch qt {
		case dns.TypeSOA:
			m.Answer = []dns.RR{z.soaFor(req.q.Name)}
		case dns.TypeNS:
			m.Answer = []dns.RR{&dns.NS{Hdr: header(req.q.Name, dns.TypeNS, z.ttl), Ns: z.nsName}}
			m.Extra = z.addrRecords(z.nsName, z.lookup(z.nsName), dns.TypeANY, 0)
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{z.soa}
		}
		return m
	}
	n := z.lookup(req.name)
	switch {
	case n == nil && z.ents[req.name]:
		m.Ns = []dns.RR{z.soa}
	case n == nil:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.soa}
	case n.cname != "":
		z.follow(ctx, req, m, req.q.Name, n)
	default:
		m.Answer = z.addrRecords(req.q.Name, n, qt, req.msg.Id)
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{z.soa}
		}
	}
	return m
}

// lookup finds a name of the zone: config names first, then the lease
// names (single labels right under the domain), so a static host wins over
// a DHCP client that claims its name.
func (z *localZone) lookup(name string) *localName {
	if n := z.names[name]; n != nil {
		return n
	}
	label, ok := strings.CutSuffix(name, "."+z.domain)
	if !ok || strings.IndexByte(label, '.') >= 0 {
		return nil
	}
	if addrs := z.leases.addrs(label); len(addrs) > 0 {
		return &localName{addrs: addrs}
	}
	return nil
}

// addrRecords are n's A and AAAA records of type qt (ANY for both), owned
// by owner, in the order turn picks (see turnStart).
func (z *localZone) addrRecords(owner string, n *localName, qt uint16, turn uint16) []dns.RR {
	if n == nil {
		return nil
	}
	var out []dns.RR
	start := turnStart(n.addrs, qt, turn)
	for k := range n.addrs {
		if a := n.addrs[(start+k)%len(n.addrs)]; hasType(a, qt) {
			out = append(out, aRecord(owner, a, z.ttl))
		}
	}
	return out
}

// turnStart is where a walk round addrs begins so that the addresses of
// type qt come out rotated by turn: the client's query ID, as unbound's
// rrset-roundrobin takes it, so that clients spread over a name's
// addresses and both answer paths agree on the order without any state.
// ANY, which mixes the types, keeps the config's order.
func turnStart(addrs []netip.Addr, qt uint16, turn uint16) int {
	if qt == dns.TypeANY {
		return 0
	}
	n := 0
	for _, a := range addrs {
		if hasType(a, qt) {
			n++
		}
	}
	if n < 2 {
		return 0
	}
	skip := int(turn) % n
	for i, a := range addrs {
		if hasType(a, qt) {
			if skip == 0 {
				return i
			}
			skip--
		}
	}
	return 0
}

// hasType reports whether a is answered for qtype (ANY takes both).
func hasType(a netip.Addr, qtype uint16) bool {
	return qtype == dns.TypeANY || qtype == addrType(a)
}

// follow answers a CNAME: the CNAME itself, then the target's records,
// locally while the chain stays in the zone, or from the rest of the
// pipeline (cache and upstreams) when it leaves the zone.
func (z *localZone) follow(ctx context.Context, req *request, m *dns.Msg, owner string, n *localName) {
	for range maxChain {
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: header(owner, dns.TypeCNAME, z.ttl), Target: n.cname})
		if req.q.Qtype == dns.TypeCNAME {
			return
		}
		target := n.cname
		if !inDomain(target, z.domain) {
			z.followOut(ctx, req, m, target)
			return
		}
		if n = z.lookup(target); n == nil {
			if !z.ents[target] {
				m.Rcode = dns.RcodeNameError
			}
			m.Ns = []dns.RR{z.soa}
			return
		}
		if n.cname == "" {
			rrs := z.addrRecords(target, n, req.q.Qtype, req.msg.Id)
			if len(rrs) == 0 {
				m.Ns = []dns.RR{z.soa}
			}
			m.Answer = append(m.Answer, rrs...)
			return
		}
		owner = target
	}
	m.Rcode = dns.RcodeServerFailure // a loop
}

// followOut resolves a CNAME target outside the zone through the next stages.
func (z *localZone) followOut(ctx context.Context, req *request, m *dns.Msg, target string) {
	sub := req.derive(target)
	r := z.next.serve(ctx, sub)
	if sub.slow {
		req.slow = true
		return
	}
	req.timedOut = req.timedOut || sub.timedOut
	if r == nil {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	m.Rcode = r.Rcode
	m.Answer = append(m.Answer, r.Answer...)
	m.Ns = append(m.Ns, r.Ns...)
	m.AuthenticatedData = false
}

// bare answers a single-label name by looking it up under the domain, and
// never forwards a dotless A or AAAA query (dnsmasq's domain-needed): the
// Internet has no such hosts, and the query would leak a local name. A
// local CNAME is followed as under the domain. Negative answers carry our
// SOA owned by the root, the only zone above a single label, so clients
// may cache them (RFC 2308).
func (z *localZone) bare(ctx context.Context, req *request) *dns.Msg {
	qt := req.q.Qtype
	if n := z.lookup(req.name + z.domain); n != nil {
		req.by = byLocal
		m := req.reply(dns.RcodeSuccess)
		m.Authoritative = true
		if n.cname != "" {
			z.follow(ctx, req, m, req.q.Name, n)
			return m
		}
		m.Answer = z.addrRecords(req.q.Name, n, qt, req.msg.Id)
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{z.soaFor(".")}
		}
		return m
	}
	if qt == dns.TypeA || qt == dns.TypeAAAA {
		req.by = byLocal
		m := req.reply(dns.RcodeNameError)
		m.Authoritative = true
		m.Ns = []dns.RR{z.soaFor(".")}
		return m
	}
	return z.next.serve(ctx, req)
}

// isSingleLabel reports whether name (an FQDN) is one label, like "nas.".
func isSingleLabel(name string) bool {
	return len(name) > 1 && strings.IndexByte(name, '.') == len(name)-1
}

// soaFor is the zone's SOA owned by owner (the client's spelling of the apex).
func (z *localZone) soaFor(owner string) dns.RR {
	soa := *z.soa
	soa.Hdr.Name = owner
	return &soa
}
