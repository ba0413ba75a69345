package dns

import (
	"slices"

	"github.com/miekg/dns"
)

// maxTTL is the largest TTL there is: RFC 2181 §8 reads a TTL with the top
// bit set as 0.
const maxTTL = 1<<31 - 1

// scrubber cleans an upstream's answer before anything else sees it, as
// unbound's scrubber does for a forwarder: records that do not belong to
// the question are dropped, so an upstream (or a spoofer that won the
// race) cannot plant data for other names in the cache or in a client.
type scrubber struct {
	local string // the site's domain: no upstream speaks for it
}

// scrub keeps in m, an upstream's answer to its question, only:
//   - in the answer section, the records of the question's name and type
//     and the CNAME chain from it (with the DNAMEs and signatures on the
//     way), and for the names the chain reaches;
//   - in the authority section, SOA, NS and DS records of the zones
//     holding the name the chain ends at, and the DNSSEC denial records
//     (NSEC, NSEC3, RRSIG) inside those zones;
//   - in the additional section, addresses of the names the kept records
//     point at (NS, MX, SRV, SVCB targets).
//
// Nothing owned by a name under the site's domain passes, unless route,
// the conditional forwarding domain the query went to, lies below it and
// holds the name. TTLs above 2^31−1 become 0. It returns how many records
// it dropped.
func (s scrubber) scrub(m *dns.Msg, route string) int {
	q := m.Question[0]
	chain := answerChain(m.Answer, q)
	final := chain[len(chain)-1]
	before := len(m.Answer) + len(m.Ns) + len(m.Extra)

	m.Answer = s.keep(m.Answer, route, func(rr dns.RR, owner string) bool {
		return inAnswer(rr, owner, q.Qtype, chain)
	})
	var zones []string
	for _, rr := range m.Answer {
		if sig, ok := rr.(*dns.RRSIG); ok && inDomain(final, lowerName(sig.SignerName)) {
			zones = append(zones, lowerName(sig.SignerName))
		}
	}
	for _, rr := range m.Ns {
		switch rr.Header().Rrtype {
		case dns.TypeSOA, dns.TypeNS:
			if owner := lowerName(rr.Header().Name); inDomain(final, owner) {
				zones = append(zones, owner)
			}
		}
	}
	m.Ns = s.keep(m.Ns, route, func(rr dns.RR, owner string) bool {
		switch rr.Header().Rrtype {
		case dns.TypeSOA, dns.TypeNS, dns.TypeDS:
			return inDomain(final, owner)
		case dns.TypeNSEC, dns.TypeNSEC3, dns.TypeRRSIG:
			return slices.ContainsFunc(zones, func(z string) bool { return inDomain(owner, z) })
		}
		return false
	})
	targets := pointedAt(m.Answer, m.Ns)
	m.Extra = s.keep(m.Extra, route, func(rr dns.RR, owner string) bool {
		switch rr.Header().Rrtype {
		case dns.TypeA, dns.TypeAAAA, dns.TypeRRSIG:
			return slices.Contains(targets, owner)
		}
		return false
	})
	return before - len(m.Answer) - len(m.Ns) - len(m.Extra)
}

// keep returns the records of rrs that ok accepts and that are not the
// site's own, with their TTLs read as RFC 2181 says.
func (s scrubber) keep(rrs []dns.RR, route string, ok func(rr dns.RR, owner string) bool) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		h := rr.Header()
		owner := lowerName(h.Name)
		if inDomain(owner, s.local) && !(route != "." && inDomain(route, s.local) && inDomain(owner, route)) {
			continue
		}
		if !ok(rr, owner) {
			continue
		}
		if h.Ttl > maxTTL {
			h.Ttl = 0
		}
		out = append(out, rr)
	}
	clear(rrs[len(out):]) // no dropped record stays reachable
	return out
}

// answerChain is the question's name and the names its CNAMEs lead to, in
// order (lower case). A CNAME question has no chain to follow.
func answerChain(answer []dns.RR, q dns.Question) []string {
	chain := []string{lowerName(q.Name)}
	if q.Qtype == dns.TypeCNAME {
		return chain
	}
	for range maxChain * 2 {
		next := ""
		for _, rr := range answer {
			if c, ok := rr.(*dns.CNAME); ok && lowerName(c.Hdr.Name) == chain[len(chain)-1] {
				next = lowerName(c.Target)
				break
			}
		}
		if next == "" || slices.Contains(chain, next) {
			break
		}
		chain = append(chain, next)
	}
	return chain
}

// inAnswer reports whether an answer record belongs to the chain: the
// asked type (or a CNAME) at a name of it, a DNAME above one of its
// names, or a signature over either.
func inAnswer(rr dns.RR, owner string, qtype uint16, chain []string) bool {
	onChain := slices.Contains(chain, owner)
	above := slices.ContainsFunc(chain, func(n string) bool { return n != owner && inDomain(n, owner) })
	switch t := rr.Header().Rrtype; t {
	case dns.TypeDNAME:
		return above
	case dns.TypeRRSIG:
		return onChain || above && rr.(*dns.RRSIG).TypeCovered == dns.TypeDNAME
	default:
		return onChain && (t == qtype || qtype == dns.TypeANY || t == dns.TypeCNAME)
	}
}

// pointedAt lists the names kept records point at, whose addresses the
// additional section may carry.
func pointedAt(sections ...[]dns.RR) []string {
	var out []string
	for _, rrs := range sections {
		for _, rr := range rrs {
			var name string
			switch rr := rr.(type) {
			case *dns.NS:
				name = rr.Ns
			case *dns.MX:
				name = rr.Mx
			case *dns.SRV:
				name = rr.Target
			case *dns.SVCB:
				name = rr.Target
			case *dns.HTTPS:
				name = rr.Target
			default:
				continue
			}
			out = append(out, lowerName(name))
		}
	}
	return out
}
