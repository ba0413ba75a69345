package dhcp

import (
	"encoding/binary"
	"slices"

	"github.com/insomniacslk/dhcp/dhcpv4"
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
func replyLimit(req *dhcpv4.DHCPv4) int {
	limit := minMessage
	if v := req.Options[optMaxMessageSize]; len(v) == 2 {
		limit = max(limit, int(binary.BigEndian.Uint16(v)))
	}
	return min(limit, maxMessage)
}

// head are the options a reply starts with, in this order, written only in
// the options field: the message type first, as clients expect, then the
// server identifier, the lease time, and the echoed relay agent
// information (RFC 3046; written last) and client identifier (RFC 6842).
var head = [...]uint8{optMessageType, optServerID, optLeaseTime, optRelayAgentInfo, optClientID}

// replyOrder lists a reply's options by priority: the head, then what the
// client asked for in the order of its parameter request list (RFC 2132
// §9.8), then the rest by code. What does not fit is dropped from the end.
func replyOrder(opts dhcpv4.Options, prl []byte) []uint8 {
	order := make([]uint8, 0, len(opts))
	var seen [256]bool
	seen[optPad], seen[optEnd], seen[optOverload] = true, true, true
	add := func(c uint8) {
		if _, ok := opts[c]; ok && !seen[c] {
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
	rest := len(order)
	for c := range opts {
		add(c)
	}
	slices.Sort(order[rest:])
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

// layout says which field carries each option of a reply.
type layout struct {
	main, file, sname []uint8 // codes, in priority order
	dropped           []uint8 // what fits nowhere, in priority order
}

func (l *layout) overload() byte {
	var v byte
	if len(l.file) > 0 {
		v |= overloadFile
	}
	if len(l.sname) > 0 {
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
func arrange(opts dhcpv4.Options, order []uint8, limit int, fileFree, snameFree bool) layout {
	room := limit - ipUDPHeaders - fixedLen - cookieLen - 1 // END
	total := 0
	for _, c := range order {
		total += optionLen(opts[c])
	}
	if total <= room {
		return layout{main: order}
	}
	if l := fill(opts, order, room-3, fileFree, snameFree); l.overload() != 0 {
		return l
	}
	// Nothing went to file or sname: keep the three bytes of option 52.
	return fill(opts, order, room, false, false)
}

func fill(opts dhcpv4.Options, order []uint8, room int, useFile, useSname bool) layout {
	var l layout
	free := [3]int{room, -1, -1}
	if useFile {
		free[1] = fileLen - 1 // END
	}
	if useSname {
		free[2] = snameLen - 1
	}
	fields := [3]*[]uint8{&l.main, &l.file, &l.sname}
	for _, c := range order {
		n := optionLen(opts[c])
		where := 3
		if slices.Contains(head[:], c) {
			where = 1
		}
		placed := false
		for i := range where {
			if n <= free[i] {
				free[i] -= n
				*fields[i] = append(*fields[i], c)
				placed = true
				break
			}
		}
		if !placed {
			l.dropped = append(l.dropped, c)
		}
	}
	return l
}

// marshalReply writes the reply in the given layout: the BOOTP header, the
// options field (option 52 after the message type, option 82 last, END),
// padded to 300 bytes, and the file and sname fields with their options.
func marshalReply(r *dhcpv4.DHCPv4, l layout) []byte {
	b := make([]byte, 0, fixedLen+cookieLen+64)
	hw := r.ClientHWAddr
	if len(hw) > 16 {
		hw = hw[:16]
	}
	b = append(b, byte(r.OpCode), byte(r.HWType), byte(len(hw)), r.HopCount)
	b = append(b, r.TransactionID[:]...)
	b = binary.BigEndian.AppendUint16(b, r.NumSeconds)
	b = binary.BigEndian.AppendUint16(b, r.Flags)
	for _, a := range []([]byte){r.ClientIPAddr, r.YourIPAddr, r.ServerIPAddr, r.GatewayIPAddr} {
		b = appendIP4(b, a)
	}
	b = append(b, hw...)
	b = append(b, make([]byte, 16-len(hw))...)
	b = appendField(b, r.Options, l.sname, r.ServerHostName, snameLen)
	b = appendField(b, r.Options, l.file, r.BootFileName, fileLen)
	b = append(b, magicCookie[:]...)
	relay := false
	for i, c := range l.main {
		if c == optRelayAgentInfo {
			relay = true
			continue
		}
		b = appendOption(b, c, r.Options[c])
		if i == 0 && l.overload() != 0 {
			b = append(b, optOverload, 1, l.overload())
		}
	}
	if relay {
		b = appendOption(b, optRelayAgentInfo, r.Options[optRelayAgentInfo])
	}
	b = append(b, optEnd)
	for len(b) < bootpMinLen {
		b = append(b, optPad)
	}
	return b
}

// appendField writes the sname or file field: the options put there and
// END, or the text it holds, padded with zeros to size bytes.
func appendField(b []byte, opts dhcpv4.Options, codes []uint8, text string, size int) []byte {
	start := len(b)
	if len(codes) > 0 {
		for _, c := range codes {
			b = appendOption(b, c, opts[c])
		}
		b = append(b, optEnd)
	} else {
		b = append(b, text[:min(len(text), size-1)]...)
	}
	return append(b, make([]byte, size-(len(b)-start))...)
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

func appendIP4(b []byte, ip []byte) []byte {
	if len(ip) == 16 {
		ip = ip[12:]
	}
	if len(ip) != 4 {
		return append(b, 0, 0, 0, 0)
	}
	return append(b, ip...)
}

// encode writes the reply in the size the client takes, its options in
// priority order (replyOrder); options that fit nowhere are dropped from
// the reply and logged.
func (h *handler) encode(req, r *dhcpv4.DHCPv4) []byte {
	limit := replyLimit(req)
	l := arrange(r.Options, replyOrder(r.Options, req.Options[optParamRequest]), limit, r.ServerHostName == "", r.BootFileName == "")
	if len(l.dropped) > 0 {
		for _, c := range l.dropped {
			delete(r.Options, c)
		}
		h.logDropped(req, l.dropped, limit)
	}
	return marshalReply(r, l)
}

// maxDropLogged bounds the clients remembered as logged; past it, drops
// are only counted.
const maxDropLogged = 4096

func (h *handler) logDropped(req *dhcpv4.DHCPv4, codes []uint8, limit int) {
	h.counters.optionsDropped.Add(uint64(len(codes)))
	if h.dropLogged == nil {
		h.dropLogged = map[string]struct{}{}
	}
	k := string(req.ClientHWAddr) + "/" + string(codes)
	if _, done := h.dropLogged[k]; done || len(h.dropLogged) >= maxDropLogged {
		return
	}
	h.dropLogged[k] = struct{}{}
	for _, c := range codes {
		h.log.Warn("an option does not fit in the reply the client takes; dropped",
			"option", c, "mac", macString(req.ClientHWAddr), "limit", limit)
	}
}

// Fits reports the codes of the pool's options that a reply of limit bytes
// (an IP datagram; 576 for a client that sends no option 57) cannot carry
// to a client that asks for all of them, file and sname overloaded; nil
// when everything fits. The role drops such options, lowest priority
// first, and logs it; `gatewayd check` warns with Fits(576).
func (p Pool) Fits(limit int) (overflow []uint8) {
	o := buildPoolOptions(&p)
	r := dhcpv4.Options{optMessageType: {byte(dhcpv4.MessageTypeAck)}, optServerID: make([]byte, 4)}
	prl := make([]byte, 0, len(o.fixed)+3)
	for _, f := range o.fixed {
		prl = append(prl, f.code)
	}
	if o.routes != nil {
		prl = append(prl, optClasslessRoute)
	}
	o.apply(r, prl, true)
	return arrange(r, replyOrder(r, prl), limit, true, true).dropped
}
