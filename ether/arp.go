package ether

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// EtherTypes this package sends.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
)

const (
	headerLen   = 14 // Ethernet II: destination, source, EtherType
	arpLen      = 28 // ARP for IPv4 over Ethernet
	minFrameLen = 60 // the Ethernet minimum without the FCS; shorter frames are padded
)

// Broadcast is the Ethernet broadcast address.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Frame is a received Ethernet II frame.
type Frame struct {
	Dst, Src  net.HardwareAddr
	EtherType uint16
	Payload   []byte
}

// ErrShortFrame means the bytes are too few for an Ethernet header.
var ErrShortFrame = errors.New("shorter than an Ethernet header")

// ParseFrame splits an Ethernet II frame. The Frame's fields alias b.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < headerLen {
		return Frame{}, fmt.Errorf("Ethernet frame of %d bytes: %w", len(b), ErrShortFrame)
	}
	return Frame{
		Dst:       net.HardwareAddr(b[0:6]),
		Src:       net.HardwareAddr(b[6:12]),
		EtherType: binary.BigEndian.Uint16(b[12:14]),
		Payload:   b[headerLen:],
	}, nil
}

// putHeader writes an Ethernet II header into b[:headerLen].
func putHeader(b []byte, dst, src net.HardwareAddr, etherType uint16) {
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], etherType)
}

// Op is an ARP operation.
type Op uint16

const (
	OpRequest Op = 1
	OpReply   Op = 2
)

// ARP is an ARP packet for IPv4 over Ethernet (RFC 826).
type ARP struct {
	Op        Op
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

// ErrNotARP means the bytes are not an ARP packet for IPv4 over Ethernet.
var ErrNotARP = errors.New("not an ARP packet for IPv4 over Ethernet")

// ParseARP reads an ARP packet (the payload of an ARP frame; trailing
// padding is ignored). The returned addresses do not alias b.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < arpLen {
		return ARP{}, fmt.Errorf("%w: %d bytes", ErrNotARP, len(b))
	}
	if binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != EtherTypeIPv4 || b[4] != 6 || b[5] != 4 {
		return ARP{}, ErrNotARP
	}
	return ARP{
		Op:        Op(binary.BigEndian.Uint16(b[6:8])),
		SenderMAC: bytes.Clone(b[8:14]),
		SenderIP:  netip.AddrFrom4([4]byte(b[14:18])),
		TargetMAC: bytes.Clone(b[18:24]),
		TargetIP:  netip.AddrFrom4([4]byte(b[24:28])),
	}, nil
}

// Append appends the encoded packet to b.
func (p ARP) Append(b []byte) ([]byte, error) {
	if len(p.SenderMAC) != 6 || len(p.TargetMAC) != 6 {
		return nil, fmt.Errorf("ARP packet: MAC address %q or %q is not 6 bytes", p.SenderMAC, p.TargetMAC)
	}
	if !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return nil, fmt.Errorf("ARP packet: %s or %s is not an IPv4 address", p.SenderIP, p.TargetIP)
	}
	b = binary.BigEndian.AppendUint16(b, 1) // hardware type: Ethernet
	b = binary.BigEndian.AppendUint16(b, EtherTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, uint16(p.Op))
	b = append(b, p.SenderMAC...)
	b = append(b, p.SenderIP.AsSlice()...)
	b = append(b, p.TargetMAC...)
	return append(b, p.TargetIP.AsSlice()...), nil
}

// arpFrame is the broadcast frame carrying p from src, padded to the
// Ethernet minimum.
func arpFrame(src net.HardwareAddr, p ARP) ([]byte, error) {
	b := make([]byte, headerLen, minFrameLen)
	putHeader(b, Broadcast, src, EtherTypeARP)
	b, err := p.Append(b)
	if err != nil {
		return nil, err
	}
	return pad(b), nil
}

// parseARPFrame reads the ARP packet in a whole frame; a frame of another
// EtherType is ErrNotARP.
func parseARPFrame(b []byte) (ARP, error) {
	f, err := ParseFrame(b)
	if err != nil {
		return ARP{}, err
	}
	if f.EtherType != EtherTypeARP {
		return ARP{}, fmt.Errorf("%w: EtherType %#04x", ErrNotARP, f.EtherType)
	}
	return ParseARP(f.Payload)
}

// ProbePacket is an RFC 5227 ARP Probe for ip from mac: a request whose
// sender IP is 0.0.0.0, so no neighbour learns anything from it, and whose
// target hardware address is zero. The holder of ip answers it.
func ProbePacket(mac net.HardwareAddr, ip netip.Addr) ARP {
	return ARP{Op: OpRequest, SenderMAC: mac, SenderIP: netip.IPv4Unspecified(),
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: ip}
}

// AnnouncementPacket is an RFC 5227 ARP Announcement of ip held by mac: a
// request whose sender and target IP are both ip. Linux updates an existing
// neighbour entry from it at once (it counts as gratuitous, so locktime does
// not apply) and, with arp_accept, creates one.
func AnnouncementPacket(mac net.HardwareAddr, ip netip.Addr) ARP {
	return ARP{Op: OpRequest, SenderMAC: mac, SenderIP: ip,
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: ip}
}

// Conflicts reports whether p shows that a host other than self uses or
// claims ip, by RFC 5227 section 2.1.1: any ARP packet (request or reply)
// whose sender IP is ip, or an ARP Probe (sender IP 0.0.0.0) whose target IP
// is ip, in both cases with a sender hardware address that is not self. A
// plain request for ip from a host with an address of its own is somebody
// asking, not claiming, and does not count.
func (p ARP) Conflicts(ip netip.Addr, self net.HardwareAddr) bool {
	if bytes.Equal(p.SenderMAC, self) {
		return false
	}
	if p.SenderIP == ip {
		return true
	}
	return p.Op == OpRequest && p.SenderIP.IsUnspecified() && p.TargetIP == ip
}
