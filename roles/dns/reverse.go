package dns

import (
	"net/netip"
	"strconv"
	"strings"
)

const (
	v4Arpa = "in-addr.arpa."
	v6Arpa = "ip6.arpa."
)

// reversePrefix reads a name under in-addr.arpa or ip6.arpa as the address
// prefix it stands for: "1.168.192.in-addr.arpa." is 192.168.1.0/24, a full
// name is a /32 (or /128). Names with bad labels, or more labels than an
// address has, are not reverse names.
func reversePrefix(name string) (netip.Prefix, bool) {
	switch {
	case strings.HasSuffix(name, "."+v4Arpa):
		return parseV4Reverse(strings.TrimSuffix(name, "."+v4Arpa))
	case name == v4Arpa:
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	case strings.HasSuffix(name, "."+v6Arpa):
		return parseV6Reverse(strings.TrimSuffix(name, "."+v6Arpa))
	case name == v6Arpa:
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
	}
	return netip.Prefix{}, false
}

func parseV4Reverse(labels string) (netip.Prefix, bool) {
	parts := strings.Split(labels, ".")
	if len(parts) > 4 {
		return netip.Prefix{}, false
	}
	var b [4]byte
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return netip.Prefix{}, false
		}
		b[len(parts)-1-i] = byte(n)
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts)), true
}

func parseV6Reverse(labels string) (netip.Prefix, bool) {
	parts := strings.Split(labels, ".")
	if len(parts) > 32 {
		return netip.Prefix{}, false
	}
	var b [16]byte
	for i, p := range parts {
		if len(p) != 1 {
			return netip.Prefix{}, false
		}
		n, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return netip.Prefix{}, false
		}
		nib := len(parts) - 1 - i // nibble index from the left
		if nib%2 == 0 {
			b[nib/2] |= byte(n) << 4
		} else {
			b[nib/2] |= byte(n)
		}
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 4*len(parts)), true
}

// reverseName is the reverse zone name of a prefix, rounded up to the next
// label boundary (8 bits for IPv4, 4 for IPv6): 192.168.1.0/24 is
// "1.168.192.in-addr.arpa.", an address is its PTR name.
func reverseName(p netip.Prefix) string {
	a := p.Addr()
	var sb strings.Builder
	if a.Is4() {
		b := a.As4()
		for i := (p.Bits()+7)/8 - 1; i >= 0; i-- {
			sb.WriteString(strconv.Itoa(int(b[i])))
			sb.WriteByte('.')
		}
		sb.WriteString(v4Arpa)
		return sb.String()
	}
	b := a.As16()
	const hex = "0123456789abcdef"
	for i := (p.Bits()+3)/4 - 1; i >= 0; i-- {
		n := b[i/2] >> 4
		if i%2 == 1 {
			n = b[i/2] & 0xf
		}
		sb.WriteByte(hex[n])
		sb.WriteByte('.')
	}
	sb.WriteString(v6Arpa)
	return sb.String()
}

// roundUp widens p's length to the next label boundary, keeping the bits of
// addr: the zone apex that holds addr's reverse name inside p.
func roundUp(p netip.Prefix, addr netip.Addr) netip.Prefix {
	step := 8
	if p.Addr().Is6() {
		step = 4
	}
	bits := (p.Bits() + step - 1) / step * step
	out, _ := addr.Prefix(bits)
	return out
}

// covers reports whether p holds all of q.
func covers(p, q netip.Prefix) bool {
	return p.Addr().BitLen() == q.Addr().BitLen() && p.Bits() <= q.Bits() && p.Contains(q.Addr())
}
