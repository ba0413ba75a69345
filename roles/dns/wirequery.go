package dns

import (
	"encoding/binary"
	"unsafe"

	"github.com/miekg/dns"
)

// wireQuery is a UDP query read straight from its bytes for the fast path
// (fastpath.go), without building a dns.Msg. parseWireQuery accepts only
// the plain shape almost every stub sends (one question of plain labels,
// class IN, at most an OPT record without options other than cookies and
// padding) and leaves the rest to the general path, which then answers
// exactly as it always did.
type wireQuery struct {
	raw     []byte
	id      uint16
	rd, cd  bool
	ad      bool // the client asked for the AD bit
	qtype   uint16
	qclass  uint16
	nameEnd int // offset just past the question's name

	edns bool // the client sent an OPT record
	do   bool // DNSSEC OK
	size int  // the largest UDP reply the client takes

	name    [256]byte // the name in lower case, presentation form with the final dot
	nameLen int
}

// lowerName is the question's name in lower case, aliasing q: for lookups
// only, never to be kept (it changes with the next query).
func (q *wireQuery) lowerName() string {
	return unsafeString(q.name[:q.nameLen])
}

// unsafeString is b as a string without a copy, for map lookups that do
// not keep their key: b must not change while the string is in use.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// parseWireQuery reads raw into q and reports whether the fast path may
// answer it. Whatever it refuses the general path parses and answers: an
// unusual query is never wrong, only slower.
func parseWireQuery(raw []byte, q *wireQuery) bool {
	if len(raw) < 12 {
		return false
	}
	be := binary.BigEndian
	const qr, opcode, ad, cd = 0x80, 0x78, 0x20, 0x10
	if raw[2]&(qr|opcode) != 0 || be.Uint16(raw[4:]) != 1 || be.Uint16(raw[6:]) != 0 || be.Uint16(raw[8:]) != 0 {
		return false
	}
	ar := be.Uint16(raw[10:])
	if ar > 1 {
		return false
	}
	q.raw, q.id = raw, be.Uint16(raw)
	q.rd, q.ad, q.cd = raw[2]&0x01 != 0, raw[3]&ad != 0, raw[3]&cd != 0
	off, ok := q.readName(raw)
	if !ok || off+4 > len(raw) {
		return false
	}
	q.nameEnd = off
	q.qtype, q.qclass = be.Uint16(raw[off:]), be.Uint16(raw[off+2:])
	off += 4
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeMAILA, dns.TypeMAILB:
		return false
	}
	if q.qclass != dns.ClassINET {
		return false
	}
	q.edns, q.do, q.size = false, false, dns.MinMsgSize
	if ar == 0 {
		return off == len(raw)
	}
	return q.readOPT(raw, off)
}

// readName reads the question's name (plain labels of letters, digits,
// hyphens and underscores: no escapes needed in presentation form) into
// q.name, in lower case. It returns the offset past the name.
func (q *wireQuery) readName(raw []byte) (int, bool) {
	off, n := 12, 0
	for {
		if off >= len(raw) {
			return 0, false
		}
		l := int(raw[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(raw) || n+l+1 > 254 {
			return 0, false
		}
		for _, c := range raw[off : off+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return 0, false
			}
			q.name[n] = c
			n++
		}
		q.name[n] = '.'
		n++
		off += l
	}
	if n == 0 {
		return 0, false // the root
	}
	q.nameLen = n
	return off, true
}

// readOPT reads the OPT record at off, the last thing in raw: owned by the
// root, EDNS version 0, options only cookies and padding (whose parsing
// cannot fail, so the general path would accept them too).
func (q *wireQuery) readOPT(raw []byte, off int) bool {
	be := binary.BigEndian
	if off+11 > len(raw) || raw[off] != 0 || be.Uint16(raw[off+1:]) != dns.TypeOPT {
		return false
	}
	size := be.Uint16(raw[off+3:])
	extRcode, version, flags := raw[off+5], raw[off+6], raw[off+7]
	rdlen := int(be.Uint16(raw[off+9:]))
	off += 11
	if extRcode != 0 || version != 0 || off+rdlen != len(raw) {
		return false
	}
	for end := off + rdlen; off < end; {
		if off+4 > end {
			return false
		}
		code, n := be.Uint16(raw[off:]), int(be.Uint16(raw[off+2:]))
		if code != dns.EDNS0COOKIE && code != dns.EDNS0PADDING || off+4+n > end {
			return false
		}
		off += 4 + n
	}
	q.edns, q.do, q.size = true, flags&0x80 != 0, clampSize(int(size))
	return true
}
