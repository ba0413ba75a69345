package dhcp

import (
	"encoding/binary"
	"math/bits"
)

// Sizes of a DHCP message (RFC 2131 §2) and of what carries it.
const (
	ipUDPHeaders = 20 + 8
	fixedLen     = 236 // op through file
	cookieLen    = 4
	snameLen     = 64
	fileLen      = 128
	// minMessage is the IP datagram every client must take (RFC 2131 §2,
	// RFC 2132 §9.10): the limit for a client without option 57, and the
	// least option 57 may say.
	minMessage = 576
	// maxMessage caps option 57 at an Ethernet MTU, so no reply is ever
	// fragmented.
	maxMessage  = 1500
	bootpMinLen = 300 // RFC 951: some relays drop shorter BOOTP messages
)

const (
	optPad            = 0
	optOverload       = 52
	optMaxMessageSize = 57
	optEnd            = 255
)

var magicCookie = [cookieLen]byte{99, 130, 83, 99}

// The values of option 52 (RFC 2132 §9.3): which fields carry options.
const (
	overloadFile  = 1
	overloadSname = 2
)

// replyLimit is the largest IP datagram the client takes: its option 57,
// never less than 576 (RFC 2132 §9.10), 576 without one.
func replyLimit(req *packet) int {
	limit := minMessage
	if v := req.opts.get(optMaxMessageSize); len(v) == 2 {
		limit = max(limit, int(binary.BigEndian.Uint16(v)))
	}
	return min(limit, maxMessage)
}

// head are the options a reply starts with, in this order, written only in
// the options field: the message type first, as clients expect, then the
// server identifier, the lease time, and the echoed relay agent
// information (RFC 3046; written last) and client identifier (RFC 6842).
var head = [...]uint8{optMessageType, optServerID, optLeaseTime, optRelayAgentInfo, optClientID}

// inHead reports whether c is one of head.
func inHead(c uint8) bool {
	return c == optMessageType || c == optServerID || c == optLeaseTime || c == optRelayAgentInfo || c == optClientID
}

// replyOrder appends a reply's option codes to order by priority: the
// head, then what the client asked for in the order of its parameter
// request list (RFC 2132 §9.8), then the rest by code. What does not fit
// is dropped from the end.
func replyOrder(order []uint8, opts *options, prl []byte) []uint8 {
	var seen [256]bool
	seen[optPad], seen[optEnd], seen[optOverload] = true, true, true
	add := func(c uint8) {
		if opts.present(c) && !seen[c] {
			seen[c] = true
			order = append(order, c)
		}
	}
	for _, c := range head {
		add(c)
	}
	for _, c := range prl {
		add(c)
	}
	for w, bm := range opts.has { // by code
		for bm != 0 {
			i := bits.TrailingZeros64(bm)
			bm &= bm - 1
			add(uint8(w*64 + i))
		}
	}
	return order
}

// optionLen is the wire size of an option, split into instances of at
// most 255 bytes (RFC 3396).
func optionLen(v []byte) int {
	if len(v) == 0 {
		return 2
	}
	return len(v) + 2*((len(v)+254)/255)
}

// The fields that may carry a reply's options.
const (
	inMain = iota + 1
	inFile
	inSname
	inNone // fits nowhere: dropped
)

// layout says which field carries each option of a reply.
type layout struct {
	where                [256]uint8 // inMain, inFile, inSname or inNone, by code
	file, sname, dropped int        // how many options each holds
}

func (l *layout) overload() byte {
	var v byte
	if l.file > 0 {
		v |= overloadFile
	}
	if l.sname > 0 {
		v |= overloadSname
	}
	return v
}

// arrange fits the options into a reply of at most limit bytes on the wire
// (IP and UDP headers included): the options field if they all fit there;
// else, with option 52 (RFC 2132 §9.3), each option in priority order goes
// to the first of the options field, file and sname (those free) with
// room for it; what fits nowhere is dropped. An option is never split
// across fields. The head goes only in the options field.
func arrange(l *layout, opts *options, order []uint8, limit int, fileFree, snameFree bool) {
	room := limit - ipUDPHeaders - fixedLen - cookieLen - 1 // END
	total := 0
	for _, c := range order {
		total += optionLen(opts.get(c))
	}
	if total <= room {
		l.file, l.sname, l.dropped = 0, 0, 0
		for _, c := range order {
			l.where[c] = inMain
		}
		return
	}
	if fill(l, opts, order, room-3, fileFree, snameFree); l.overload() != 0 {
		return
	}
	// Nothing went to file or sname: keep the three bytes of option 52.
	fill(l, opts, order, room, false, false)
}

func fill(l *layout, opts *options, order []uint8, room int, useFile, useSname bool) {
	l.file, l.sname, l.dropped = 0, 0, 0
	free := [3]int{room, -1, -1}
	if useFile {
		free[1] = fileLen - 1 // END
	}
	if useSname {
		free[2] = snameLen - 1
	}
	counts := [3]*int{nil, &l.file, &l.sname}
	for _, c := range order {
		n := optionLen(opts.get(c))
		fields := 3
		if inHead(c) {
			fields = 1
		}
		l.where[c] = inNone
		for i := range fields {
			if n <= free[i] {
				free[i] -= n
				l.where[c] = uint8(inMain + i)
				if counts[i] != nil {
					*counts[i]++
				}
				break
			}
		}
		if l.where[c] == inNone {
			l.dropped++
		}
	}
}

// marshalReply appends the reply in the given layout to b: the BOOTP
// header, the options field (option 52 after the message type, option 82
// last, END), padded to 300 bytes, and the file and sname fields with
// their options.
func marshalReply(b []byte, r *reply, order []uint8, l *layout) []byte {
	hw := r.chaddr
	start := len(b)
	b = append(b, opBootReply, r.htype, byte(len(hw)), 0)
	b = append(b, r.xid[:]...)
	b = append(b, 0, 0) // secs
	b = binary.BigEndian.AppendUint16(b, r.flags)
	b = binary.BigEndian.AppendUint32(b, r.ciaddr)
	b = binary.BigEndian.AppendUint32(b, r.yiaddr)
	b = append(b, 0, 0, 0, 0) // siaddr
	b = binary.BigEndian.AppendUint32(b, r.giaddr)
	b = append(b, hw...)
	b = appendZeros(b, 16-len(hw))
	b = appendField(b, &r.opts, order, l, inSname, snameLen)
	b = appendField(b, &r.opts, order, l, inFile, fileLen)
	b = append(b, magicCookie[:]...)
	first := true
	for _, c := range order {
		if l.where[c] != inMain || c == optRelayAgentInfo {
			continue
		}
		b = appendOption(b, c, r.opts.get(c))
		if first && l.overload() != 0 {
			b = append(b, optOverload, 1, l.overload())
		}
		first = false
	}
	if r.opts.present(optRelayAgentInfo) && l.where[optRelayAgentInfo] == inMain {
		b = appendOption(b, optRelayAgentInfo, r.opts.get(optRelayAgentInfo))
	}
	b = append(b, optEnd)
	if n := len(b) - start; n < bootpMinLen {
		b = appendZeros(b, bootpMinLen-n) // pad
	}
	return b
}

// opBootReply is the op of every reply (RFC 951).
const opBootReply = 2

// appendField writes the sname or file field: the options put there and
// END, or zeros, size bytes in all.
func appendField(b []byte, opts *options, order []uint8, l *layout, field uint8, size int) []byte {
	start := len(b)
	placed := false
	for _, c := range order {
		if l.where[c] == field {
			b = appendOption(b, c, opts.get(c))
			placed = true
		}
	}
	if placed {
		b = append(b, optEnd)
	}
	return appendZeros(b, size-(len(b)-start))
}

func appendZeros(b []byte, n int) []byte {
	for range n {
		b = append(b, 0)
	}
	return b
}

// appendOption writes one option, as several instances when it is longer
// than 255 bytes (RFC 3396).
func appendOption(b []byte, code uint8, v []byte) []byte {
	if len(v) == 0 {
		return append(b, code, 0)
	}
	for len(v) > 0 {
		n := min(len(v), 255)
		b = append(b, code, byte(n))
		b = append(b, v[:n]...)
		v = v[n:]
	}
	return b
}

// encode writes the reply into a buffer of its own, in the size the
// client takes, its options in priority order (replyOrder); options that
// fit nowhere are dropped from the reply and logged.
func (h *handler) encode(req *packet, r *reply) []byte {
	limit := replyLimit(req)
	h.order = replyOrder(h.order[:0], &r.opts, req.opts.get(optParamRequest))
	arrange(&h.layout, &r.opts, h.order, limit, true, true)
	if h.layout.dropped > 0 {
		var dropped []uint8
		for _, c := range h.order {
			if h.layout.where[c] == inNone {
				dropped = append(dropped, c)
				r.opts.del(c)
			}
		}
		h.logDropped(req, dropped, limit)
	}
	return marshalReply(h.wires.get(), r, h.order, &h.layout)
}

// maxDropLogged bounds the clients remembered as logged; past it, drops
// are only counted.
const maxDropLogged = 4096

func (h *handler) logDropped(req *packet, codes []uint8, limit int) {
	h.counters.optionsDropped.Add(uint64(len(codes)))
	if h.dropLogged == nil {
		h.dropLogged = map[string]struct{}{}
	}
	k := string(req.chaddr) + "/" + string(codes)
	if _, done := h.dropLogged[k]; done || len(h.dropLogged) >= maxDropLogged {
		return
	}
	h.dropLogged[k] = struct{}{}
	for _, c := range codes {
		h.log.Warn("an option does not fit in the reply the client takes; dropped",
			"option", c, "mac", macString(req.chaddr), "limit", limit)
	}
}

// Fits reports the codes of the pool's options that a reply of limit bytes
// (an IP datagram; 576 for a client that sends no option 57) cannot carry
// to a client that asks for all of them, file and sname overloaded; nil
// when everything fits. The role drops such options, lowest priority
// first, and logs it; `gatewayd check` warns with Fits(576).
func (p Pool) Fits(limit int) (overflow []uint8) {
	o := buildPoolOptions(&p)
	var r reply
	r.opts.set(optMessageType, []byte{ackType})
	r.opts.set(optServerID, make([]byte, 4))
	prl := make([]byte, 0, len(o.fixed)+3)
	for _, f := range o.fixed {
		prl = append(prl, f.code)
	}
	if o.routes != nil {
		prl = append(prl, optClasslessRoute)
	}
	o.apply(&r, prl, true)
	order := replyOrder(nil, &r.opts, prl)
	var l layout
	arrange(&l, &r.opts, order, limit, true, true)
	for _, c := range order {
		if l.where[c] == inNone {
			overflow = append(overflow, c)
		}
	}
	return overflow
}
