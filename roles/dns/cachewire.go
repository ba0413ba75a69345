package dns

import (
	"encoding/binary"
	"slices"

	"github.com/miekg/dns"
)

// The fast path for cache hits over UDP: the reply is the stored wire
// answer with the client's ID, flags, question spelling and aged TTLs
// written over it, and our OPT record appended, without unpacking or
// packing a message. Anything it cannot do (an answer larger than the
// client takes, a question spelled with another length) falls back to the
// general path.

// wireLayout is where the fields a hit rewrites lie in an entry's wire form.
type wireLayout struct {
	qnameEnd int      // the end of the question's name (it starts at 12)
	ttls     []uint16 // offsets of every record's TTL
	turn     turnSpan // the address records each hit rotates
}

// turnSpan is the last run of two or more address records of the answer
// section with the same owner and type, which hits rotate by the client's
// query ID (see turnStart). The records are byte for byte the same size
// (their owners are one compression pointer), so the rotation moves bytes
// and leaves every TTL offset where it was.
type turnSpan struct {
	first, n  int // the run's first record (index in the answer section), and its length
	off, size int // the run's offset in the wire form, and each record's size
}

// layoutOf walks a packed message; ok is false when it does not parse as
// one question and well-formed records (then hits take the general path).
func layoutOf(wire []byte) (l wireLayout, ok bool) {
	if len(wire) < 12 {
		return l, false
	}
	be := binary.BigEndian
	if be.Uint16(wire[4:]) != 1 {
		return l, false
	}
	off := 12
	for off < len(wire) && wire[off] != 0 { // the question's name: plain labels
		if wire[off]&0xC0 != 0 {
			return l, false
		}
		off += 1 + int(wire[off])
	}
	l.qnameEnd = off + 1
	off = l.qnameEnd + 4
	answers := int(be.Uint16(wire[6:]))
	records := answers + int(be.Uint16(wire[8:])) + int(be.Uint16(wire[10:]))
	var run turnSpan // the run being walked
	for i := range records {
		start := off
		if off = skipName(wire, off); off < 0 || off+10 > len(wire) {
			return l, false
		}
		rrtype := be.Uint16(wire[off:])
		l.ttls = append(l.ttls, uint16(off+4))
		off += 10 + int(be.Uint16(wire[off+8:]))
		if off > len(wire) {
			return l, false
		}
		switch {
		case i >= answers || rrtype != dns.TypeA && rrtype != dns.TypeAAAA:
			run = turnSpan{}
		case run.n > 0 && off-start == run.size && sameOwnerType(wire, run.off, start, run.size):
			run.n++
		default:
			run = turnSpan{first: i, n: 1, off: start, size: off - start}
		}
		if run.n >= 2 {
			l.turn = run
		}
	}
	return l, off == len(wire) && off <= 0xFFFF
}

// sameOwnerType reports whether the records of size bytes at a and b have
// the same owner bytes, type and class: their first size-10-rdlength
// bytes, up to the TTL.
func sameOwnerType(wire []byte, a, b, size int) bool {
	if b+size > len(wire) {
		return false
	}
	end := skipName(wire, a)
	if end < 0 {
		return false
	}
	n := end - a + 4 // the owner, type and class
	return string(wire[a:a+n]) == string(wire[b:b+n])
}

// rotate writes the turn span of src into dst (the same message, copied),
// rotated by turn.
func (t turnSpan) rotate(dst, src []byte, turn uint16) {
	if t.n < 2 {
		return
	}
	k := int(turn) % t.n * t.size
	end := t.off + t.n*t.size
	n := copy(dst[t.off:end], src[t.off+k:end])
	copy(dst[t.off+n:end], src[t.off:t.off+k])
}

// rotateRRs rotates the records of rrs in the span by turn, as rotate
// does on the wire.
func (t turnSpan) rotateRRs(rrs []dns.RR, turn uint16) {
	if t.n < 2 || t.first+t.n > len(rrs) {
		return
	}
	run := rrs[t.first : t.first+t.n]
	k := int(turn) % t.n
	slices.Reverse(run[:k])
	slices.Reverse(run[k:])
	slices.Reverse(run)
}

// skipName returns the offset after the name at off, or -1.
func skipName(wire []byte, off int) int {
	for off < len(wire) {
		switch n := wire[off]; {
		case n == 0:
			return off + 1
		case n&0xC0 == 0xC0:
			return off + 2
		case n&0xC0 != 0:
			return -1
		default:
			off += 1 + int(n)
		}
	}
	return -1
}

// appendWire writes q's reply from the entry into buf, its TTLs lowered
// by age.
func (e *cacheEntry) appendWire(buf []byte, q *wireQuery, age uint32) ([]byte, bool) {
	l := e.layout
	if l.ttls == nil && l.qnameEnd == 0 {
		return nil, false
	}
	n := l.qnameEnd
	if q.nameEnd != n || len(e.wire)+11 > cap(buf) {
		return nil, false
	}
	out := append(buf[:0], e.wire...)
	l.turn.rotate(out, e.wire, q.id)
	copy(out[12:n], q.raw[12:n]) // the client's spelling, of the same length
	be := binary.BigEndian
	be.PutUint16(out[0:], q.id)
	const qr, rd, ra, ad, cd = 0x80, 0x01, 0x80, 0x20, 0x10
	out[2] = qr
	if q.rd {
		out[2] |= rd
	}
	flags := e.wire[3]
	out[3] = ra | flags&0x0F // the stored rcode
	if flags&ad != 0 && (q.do || q.ad) {
		out[3] |= ad
	}
	if q.cd {
		out[3] |= cd
	}
	for _, off := range l.ttls {
		ttl := be.Uint32(out[off:])
		be.PutUint32(out[off:], ttl-min(ttl, age))
	}
	if q.edns {
		out = appendOPT(out, q.do)
		be.PutUint16(out[10:], be.Uint16(out[10:])+1)
	}
	if len(out) > q.size {
		return nil, false
	}
	return out, true
}
