package dns

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// appendAddrWire writes a local answer of addresses over UDP straight into
// buf, the way the general path would pack it (owner names point at the
// question), without building a message. It reports false when the query's
// question cannot be copied as it came or the answer would not fit the
// client: then the general path answers.
func appendAddrWire(buf []byte, req *request, addrs []netip.Addr, qt uint16, ttl uint32) ([]byte, bool) {
	raw := req.raw
	end := 12
	for end < len(raw) && raw[end] != 0 {
		if raw[end]&0xC0 != 0 {
			return nil, false
		}
		end += 1 + int(raw[end])
	}
	end += 5 // the zero byte, type and class
	if end > len(raw) {
		return nil, false
	}
	be := binary.BigEndian
	out := append(buf[:0], raw[:end]...)
	const qr, aa, rd, ra, cd = 0x80, 0x04, 0x01, 0x80, 0x10
	out[2] = qr | aa | raw[2]&rd
	out[3] = ra | raw[3]&cd
	be.PutUint16(out[4:], 1)
	be.PutUint32(out[6:], 0) // answer count below, no authority
	out[10], out[11] = 0, 0
	count := 0
	start := turnStart(addrs, qt, req.msg.Id)
	for k := range addrs {
		a := addrs[(start+k)%len(addrs)]
		t := addrType(a)
		if !hasType(a, qt) {
			continue
		}
		out = append(out, 0xC0, 12, byte(t>>8), byte(t), 0, byte(dns.ClassINET))
		out = be.AppendUint32(out, ttl)
		if t == dns.TypeA {
			b := a.Unmap().As4()
			out = append(out, 0, 4)
			out = append(out, b[:]...)
		} else {
			b := a.As16()
			out = append(out, 0, 16)
			out = append(out, b[:]...)
		}
		count++
	}
	be.PutUint16(out[6:], uint16(count))
	if req.edns {
		var do byte
		if req.do {
			do = 0x80
		}
		out = append(out, 0, 0, byte(dns.TypeOPT), udpSize>>8, udpSize&0xFF, 0, 0, do, 0, 0, 0)
		be.PutUint16(out[10:], 1)
	}
	if count == 0 || len(out) > req.size {
		return nil, false
	}
	return out, true
}
