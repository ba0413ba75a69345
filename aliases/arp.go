package aliases

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ARP over Ethernet for IPv4 (RFC 826), only as much as announcing and
// probing need.
const (
	etherTypeARP = 0x0806
	etherTypeIP  = 0x0800
	arpRequest   = 1
	arpReply     = 2
	ethHeaderLen = 14
	arpLen       = 28
	minFrameLen  = 60 // Ethernet minimum without the FCS; shorter frames are padded
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpPacket is an Ethernet frame carrying an IPv4 ARP packet.
type arpPacket struct {
	EthDst, EthSrc net.HardwareAddr
	Op             uint16
	SenderMAC      net.HardwareAddr
	SenderIP       netip.Addr
	TargetMAC      net.HardwareAddr
	TargetIP       netip.Addr
}

// announcement is an RFC 5227 ARP Announcement for ip held by mac: a
// broadcast request whose sender and target IP are both ip. Linux updates
// an existing neighbour entry from it at once (it counts as gratuitous, so
// the locktime does not apply) and, with arp_accept, creates one.
func announcement(mac net.HardwareAddr, ip netip.Addr) arpPacket {
	return arpPacket{EthDst: broadcastMAC, EthSrc: mac, Op: arpRequest,
		SenderMAC: mac, SenderIP: ip, TargetMAC: make(net.HardwareAddr, 6), TargetIP: ip}
}

// probe is an RFC 5227 ARP Probe for ip: sender IP 0.0.0.0, so no
// neighbour learns anything from it; the holder of ip answers.
func probe(mac net.HardwareAddr, ip netip.Addr) arpPacket {
	return arpPacket{EthDst: broadcastMAC, EthSrc: mac, Op: arpRequest,
		SenderMAC: mac, SenderIP: netip.IPv4Unspecified(), TargetMAC: make(net.HardwareAddr, 6), TargetIP: ip}
}

func (p arpPacket) marshal() ([]byte, error) {
	for _, m := range []net.HardwareAddr{p.EthDst, p.EthSrc, p.SenderMAC, p.TargetMAC} {
		if len(m) != 6 {
			return nil, fmt.Errorf("ARP frame: MAC address %q is not 6 bytes", m)
		}
	}
	if !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return nil, fmt.Errorf("ARP frame: %s or %s is not IPv4", p.SenderIP, p.TargetIP)
	}
	b := make([]byte, minFrameLen)
	copy(b[0:6], p.EthDst)
	copy(b[6:12], p.EthSrc)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	a := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(a[0:2], 1) // hardware type: Ethernet
	binary.BigEndian.PutUint16(a[2:4], etherTypeIP)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], p.Op)
	copy(a[8:14], p.SenderMAC)
	sip, tip := p.SenderIP.As4(), p.TargetIP.As4()
	copy(a[14:18], sip[:])
	copy(a[18:24], p.TargetMAC)
	copy(a[24:28], tip[:])
	return b, nil
}

var errNotARP = errors.New("not an IPv4-over-Ethernet ARP packet")

// parseARP reads an Ethernet frame; anything but IPv4-over-Ethernet ARP is
// errNotARP. The returned addresses do not alias b.
func parseARP(b []byte) (arpPacket, error) {
	if len(b) < ethHeaderLen+arpLen {
		return arpPacket{}, fmt.Errorf("%w: %d bytes", errNotARP, len(b))
	}
	if binary.BigEndian.Uint16(b[12:14]) != etherTypeARP {
		return arpPacket{}, errNotARP
	}
	a := b[ethHeaderLen:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != etherTypeIP || a[4] != 6 || a[5] != 4 {
		return arpPacket{}, errNotARP
	}
	mac := func(s []byte) net.HardwareAddr { return bytes.Clone(s) }
	return arpPacket{
		EthDst:    mac(b[0:6]),
		EthSrc:    mac(b[6:12]),
		Op:        binary.BigEndian.Uint16(a[6:8]),
		SenderMAC: mac(a[8:14]),
		SenderIP:  netip.AddrFrom4([4]byte(a[14:18])),
		TargetMAC: mac(a[18:24]),
		TargetIP:  netip.AddrFrom4([4]byte(a[24:28])),
	}, nil
}

// holds reports whether p shows that someone other than self uses ip
// (RFC 5227 section 2.1.1): any ARP packet whose sender IP is ip, or a probe
// for ip from another host.
func (p arpPacket) holds(ip netip.Addr, self net.HardwareAddr) bool {
	if bytes.Equal(p.SenderMAC, self) {
		return false
	}
	if p.SenderIP == ip {
		return true
	}
	return p.Op == arpRequest && p.SenderIP.IsUnspecified() && p.TargetIP == ip
}
