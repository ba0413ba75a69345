package dns

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// appendAddrWire writes a local answer of addresses over UDP straight into
// buf, the way the general path packs it (owner names point at the
// question, which keeps the client's spelling), without building a
// message. It reports false when no address has the asked type or the
// answer would not fit the client: then the general path answers.
func appendAddrWire(buf []byte, q *wireQuery, addrs []netip.Addr, ttl uint32) ([]byte, bool) {
	raw := q.raw
	end := q.nameEnd + 4 // the type and class
	be := binary.BigEndian
	out := append(buf[:0], raw[:end]...)
	const qr, aa, rd, ra, cd = 0x80, 0x04, 0x01, 0x80, 0x10
	out[2] = qr | aa | raw[2]&rd
	out[3] = ra | raw[3]&cd
	be.PutUint16(out[4:], 1)
	be.PutUint32(out[6:], 0) // answer count below, no authority
	out[10], out[11] = 0, 0
	count := 0
	qt := q.qtype
	start := turnStart(addrs, qt, q.id)
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
	if q.edns {
		out = appendOPT(out, q.do)
		be.PutUint16(out[10:], 1)
	}
	if count == 0 || len(out) > q.size {
		return nil, false
	}
	return out, true
}

// appendOPT appends our OPT record: a 1232-byte buffer and the client's DO.
func appendOPT(out []byte, do bool) []byte {
	var flags byte
	if do {
		flags = 0x80
	}
	return append(out, 0, 0, byte(dns.TypeOPT), udpSize>>8, udpSize&0xFF, 0, 0, flags, 0, 0, 0)
}
