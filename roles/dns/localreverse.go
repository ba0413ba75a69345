package dns

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// reverseAnswer answers a reverse name the site knows: a PTR for a config
// or lease address, and, inside the reverse zones of the site's subnets,
// the SOA at the apex and NXDOMAIN for addresses nobody holds. It returns
// nil for names outside those zones, and for names a more specific
// conditional forward takes.
func (z *localZone) reverseAnswer(ctx context.Context, req *request, p netip.Prefix) *dns.Msg {
	zone, served := z.reverseZone(p)
	if r := req.conditional(z.routes); r != nil && (!served || len(r.domain) > len(reverseName(zone))) {
		return nil
	}
	if p.IsSingleIP() {
		if target, ok := z.ptrName(p.Addr()); ok {
			m := req.reply(dns.RcodeSuccess)
			m.Authoritative = true
			switch req.q.Qtype {
			case dns.TypePTR, dns.TypeANY:
				m.Answer = []dns.RR{ptrRecord(req.q.Name, target, z.ttl)}
			default:
				if served {
					m.Ns = []dns.RR{z.reverseSOA(zone)}
				}
			}
			return m
		}
	}
	if !served {
		return nil
	}
	apex := reverseName(zone)
	m := req.reply(dns.RcodeSuccess)
	m.Authoritative = true
	switch {
	case req.name == apex && req.q.Qtype == dns.TypeSOA:
		m.Answer = []dns.RR{z.reverseSOA(zone)}
		m.Answer[0].Header().Name = req.q.Name
	case req.name == apex && req.q.Qtype == dns.TypeNS:
		m.Answer = []dns.RR{&dns.NS{Hdr: header(req.q.Name, dns.TypeNS, z.ttl), Ns: z.nsName}}
	case p.IsSingleIP():
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.reverseSOA(zone)}
	default: // the apex, or a name between it and the addresses
		m.Ns = []dns.RR{z.reverseSOA(zone)}
	}
	return m
}

// reverseZone finds the reverse zone holding p among the site's subnets:
// each subnet's reverse names are split into zones on label boundaries
// (a /20 is sixteen /24 zones). It reports false when p is outside every
// subnet or above the zone apex.
func (z *localZone) reverseZone(p netip.Prefix) (netip.Prefix, bool) {
	for _, s := range z.reverse {
		if s.Addr().BitLen() != p.Addr().BitLen() || !s.Contains(p.Addr()) {
			continue
		}
		zone := roundUp(s, p.Addr())
		if p.Bits() >= zone.Bits() {
			return zone, true
		}
	}
	return netip.Prefix{}, false
}

// ptrName is the name an address maps back to: a config name first, then a
// DHCP client's.
func (z *localZone) ptrName(addr netip.Addr) (string, bool) {
	if name, ok := z.ptrs[addr]; ok {
		return name, true
	}
	if label, ok := z.leases.name(addr); ok {
		// A static name that owns this label hides the lease's name.
		if n := z.names[label+"."+z.domain]; n == nil {
			return label + "." + z.domain, true
		}
	}
	return "", false
}

// reverseSOA is the SOA of one of the site's reverse zones.
func (z *localZone) reverseSOA(zone netip.Prefix) dns.RR {
	soa := *z.soa
	soa.Hdr.Name = reverseName(zone)
	return &soa
}
