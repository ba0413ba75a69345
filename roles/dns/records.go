package dns

import (
	"net/netip"

	"github.com/miekg/dns"
)

// header is an IN-class RR header.
func header(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// aRecord is an A record for an IPv4 address, AAAA for IPv6.
func aRecord(name string, addr netip.Addr, ttl uint32) dns.RR {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return &dns.A{Hdr: header(name, dns.TypeA, ttl), A: b[:]}
	}
	b := addr.As16()
	return &dns.AAAA{Hdr: header(name, dns.TypeAAAA, ttl), AAAA: b[:]}
}

// addrType is the record type that carries addr.
func addrType(addr netip.Addr) uint16 {
	if addr.Unmap().Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

func ptrRecord(name, target string, ttl uint32) dns.RR {
	return &dns.PTR{Hdr: header(name, dns.TypePTR, ttl), Ptr: target}
}

// rrAddr returns the address an A or AAAA record carries.
func rrAddr(rr dns.RR) (netip.Addr, bool) {
	switch rr := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(rr.A.To4())
		return a, ok
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(rr.AAAA.To16())
		return a.Unmap(), ok
	}
	return netip.Addr{}, false
}
