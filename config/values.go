package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Range is an inclusive IPv4 address range "a-b".
type Range struct{ Start, End netip.Addr }

// UnmarshalText reads "192.168.1.100-192.168.1.199".
func (r *Range) UnmarshalText(b []byte) error {
	s := string(b)
	a, z, ok := strings.Cut(s, "-")
	if !ok {
		return fmt.Errorf("invalid range %q: want \"first-last\", e.g. \"192.168.1.100-192.168.1.199\"", s)
	}
	start, err1 := netip.ParseAddr(strings.TrimSpace(a))
	end, err2 := netip.ParseAddr(strings.TrimSpace(z))
	if err1 != nil || err2 != nil || !start.Is4() || !end.Is4() {
		return fmt.Errorf("invalid range %q: both ends must be IPv4 addresses", s)
	}
	if end.Less(start) {
		return fmt.Errorf("invalid range %q: the first address is after the last", s)
	}
	r.Start, r.End = start, end
	return nil
}

// MarshalText writes "a-b".
func (r Range) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r Range) String() string { return r.Start.String() + "-" + r.End.String() }

// Contains reports whether a is inside the range.
func (r Range) Contains(a netip.Addr) bool {
	return r.Start.IsValid() && !a.Less(r.Start) && !r.End.Less(a)
}

// Overlaps reports whether the two ranges share an address.
func (r Range) Overlaps(o Range) bool { return !r.End.Less(o.Start) && !o.End.Less(r.Start) }

// Size is the number of addresses in the range.
func (r Range) Size() int {
	a, b := r.Start.As4(), r.End.As4()
	return int(be32(b)-be32(a)) + 1
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// ParsePortSpec reads "tcp/22", "udp/53", "tcp/8000-8080" or "icmp".
func ParsePortSpec(s string) (PortSpec, error) {
	if s == "icmp" {
		return PortSpec{Proto: "icmp"}, nil
	}
	proto, ports, ok := strings.Cut(s, "/")
	if !ok || (proto != "tcp" && proto != "udp") {
		return PortSpec{}, fmt.Errorf("invalid port %q: want \"tcp/22\", \"udp/53\", \"tcp/8000-8080\" or \"icmp\"", s)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	from, err := strconv.ParseUint(lo, 10, 16)
	to := from
	if err == nil && isRange {
		to, err = strconv.ParseUint(hi, 10, 16)
	}
	if err != nil || from == 0 || to < from {
		return PortSpec{}, fmt.Errorf("invalid port %q: ports are 1-65535, low-high", s)
	}
	return PortSpec{Proto: proto, From: uint16(from), To: uint16(to)}, nil
}

func (p PortSpec) String() string {
	switch {
	case p.Proto == "icmp":
		return "icmp"
	case p.From == p.To:
		return fmt.Sprintf("%s/%d", p.Proto, p.From)
	default:
		return fmt.Sprintf("%s/%d-%d", p.Proto, p.From, p.To)
	}
}
