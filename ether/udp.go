package ether

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

const (
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	protoUDP      = 17
	ipv4TTL       = 64
	ipv4DontFrag  = 0x4000
)

// SendUDP sends one IPv4/UDP datagram from src to dst in a frame addressed
// to mac, out of the bound interface: no neighbour entry, no route and no
// local address are needed. It is how a DHCP server answers a client that
// has no address yet (RFC 2131 section 4.1: unicast to chaddr and yiaddr)
// without writing the client into the neighbour table, and how a DHCP
// client sends before it has an address of its own. The datagram is not
// fragmented: one larger than the interface's MTU is refused by the kernel.
func (c *Conn) SendUDP(mac net.HardwareAddr, src, dst netip.AddrPort, payload []byte) error {
	if len(mac) != 6 {
		return fmt.Errorf("sending UDP to %s: %q is not a MAC address", dst, mac)
	}
	from, err := c.source()
	if err != nil {
		return fmt.Errorf("sending UDP to %s: %w", dst, err)
	}
	frame, err := appendUDP(make([]byte, 0, headerLen+ipv4HeaderLen+udpHeaderLen+len(payload)), mac, from, src, dst, payload)
	if err != nil {
		return fmt.Errorf("sending UDP to %s: %w", dst, err)
	}
	if err := c.write(pad(frame)); err != nil {
		return fmt.Errorf("sending UDP to %s at %s: %w", dst, mac, err)
	}
	return nil
}

// appendUDP appends an Ethernet frame holding an IPv4 header (no options,
// ID 0 with Don't Fragment as RFC 6864 allows for atomic datagrams, TTL 64)
// and a UDP header with its checksum, then payload.
func appendUDP(b []byte, dstMAC, srcMAC net.HardwareAddr, src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return nil, fmt.Errorf("%s or %s is not an IPv4 address", src.Addr(), dst.Addr())
	}
	udpLen := udpHeaderLen + len(payload)
	if ipv4HeaderLen+udpLen > 0xffff {
		return nil, fmt.Errorf("a payload of %d bytes does not fit in one IPv4 datagram", len(payload))
	}
	start := len(b)
	b = append(b, make([]byte, headerLen+ipv4HeaderLen+udpHeaderLen)...)
	putHeader(b[start:], dstMAC, srcMAC, EtherTypeIPv4)
	s, d := src.Addr().As4(), dst.Addr().As4()

	ip := b[start+headerLen:]
	ip[0] = 0x45 // version 4, 5 words of header
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4HeaderLen+udpLen))
	binary.BigEndian.PutUint16(ip[6:8], ipv4DontFrag)
	ip[8], ip[9] = ipv4TTL, protoUDP
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:12], ^fold(sum(0, ip[:ipv4HeaderLen])))

	udp := ip[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(udp[0:2], src.Port())
	binary.BigEndian.PutUint16(udp[2:4], dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen))
	b = append(b, payload...)

	// The checksum covers a pseudo-header (addresses, protocol, length),
	// the UDP header and the payload (RFC 768).
	acc := sum(0, s[:])
	acc = sum(acc, d[:])
	acc += protoUDP + uint32(udpLen)
	acc = sum(acc, b[start+headerLen+ipv4HeaderLen:])
	ck := ^fold(acc)
	if ck == 0 {
		ck = 0xffff // 0 means "no checksum"
	}
	binary.BigEndian.PutUint16(b[start+headerLen+ipv4HeaderLen+6:], ck)
	return b, nil
}

// sum adds b as big-endian 16-bit words (an odd last byte padded with zero)
// to acc, the Internet checksum's one's-complement sum before folding.
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold folds the carries of a one's-complement sum into 16 bits.
func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
