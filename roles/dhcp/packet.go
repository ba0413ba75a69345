package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// Requests are read in place and replies written straight into their
// bytes: the hot path of a lease storm parses and builds tens of thousands
// of messages a second, and allocating a message, an option map and a
// slice per address for each (as a general DHCP library does) costs more
// than the kernel's work on the packet. The reading follows RFC 2131 and
// RFC 3396 as the insomniacslk/dhcp parser does (fuzz_test.go checks that
// both read every packet alike); the library stays for the tests, which
// build requests and read replies with it.

// options holds a message's options by code; a code is present (set) or
// not, whatever its value's length.
type options struct {
	val [256][]byte
	has [4]uint64
}

func (o *options) get(c uint8) []byte { return o.val[c] }

func (o *options) present(c uint8) bool { return o.has[c/64]&(1<<(c%64)) != 0 }

func (o *options) set(c uint8, v []byte) {
	o.val[c] = v
	o.has[c/64] |= 1 << (c % 64)
}

func (o *options) del(c uint8) {
	o.val[c] = nil
	o.has[c/64] &^= 1 << (c % 64)
}

// reset removes every option.
func (o *options) reset() {
	for w, bm := range o.has {
		for bm != 0 {
			i := bits.TrailingZeros64(bm)
			bm &= bm - 1
			o.val[w*64+i] = nil
		}
	}
	o.has = [4]uint64{}
}

// packet is a received message. Its slices point into the received bytes
// (or into its own buffer, for an option sent in several instances): they
// are valid until the next parse.
type packet struct {
	op, htype, hops byte
	xid             [4]byte
	flags           uint16
	ciaddr, giaddr  uint32
	chaddr          []byte // at most 16 bytes
	opts            options

	inst   []instance // the options in wire order, while parsing
	joined []byte     // the values of options sent in several instances
}

// instance is one option instance on the wire: its code and where its
// value lies.
type instance struct {
	code   uint8
	off, n int
}

var (
	errShort      = errors.New("shorter than the 240 bytes of a DHCP header and magic cookie")
	errCookie     = errors.New("no DHCP magic cookie")
	errNoLength   = errors.New("an option code with no length byte at the end of the packet")
	errPastTheEnd = errors.New("an option runs past the end of the packet")
)

// parse reads b. The options field may end without END (some clients
// send that, and Kea answers them); an option whose length byte or value
// runs past the packet is malformed. The instances of an option are
// concatenated (RFC 3396). The sname and file fields are not read: a
// request carries no options there that the server uses.
func (p *packet) parse(b []byte) error {
	p.opts.reset()
	if len(b) < fixedLen+cookieLen {
		return fmt.Errorf("a message of %d bytes is %w", len(b), errShort)
	}
	if [cookieLen]byte(b[fixedLen:fixedLen+cookieLen]) != magicCookie {
		return errCookie
	}
	p.op, p.htype, p.hops = b[0], b[1], b[3]
	p.xid = [4]byte(b[4:8])
	p.flags = binary.BigEndian.Uint16(b[10:12])
	p.ciaddr = binary.BigEndian.Uint32(b[12:16])
	p.giaddr = binary.BigEndian.Uint32(b[24:28])
	p.chaddr = b[28 : 28+min(int(b[2]), 16)]
	p.inst = p.inst[:0]
	var seen, twice [4]uint64
	for i := fixedLen + cookieLen; i < len(b); {
		c := b[i]
		i++
		if c == optPad {
			continue
		}
		if c == optEnd {
			break
		}
		if i == len(b) {
			return fmt.Errorf("option %d: %w", c, errNoLength)
		}
		n := int(b[i])
		i++
		if i+n > len(b) {
			return fmt.Errorf("option %d of %d bytes: %w", c, n, errPastTheEnd)
		}
		if seen[c/64]&(1<<(c%64)) != 0 {
			twice[c/64] |= 1 << (c % 64)
		}
		seen[c/64] |= 1 << (c % 64)
		p.inst = append(p.inst, instance{c, i, n})
		i += n
	}
	p.joined = p.joined[:0]
	for k, in := range p.inst {
		c := in.code
		if twice[c/64]&(1<<(c%64)) == 0 {
			p.opts.set(c, b[in.off:in.off+in.n:in.off+in.n])
			continue
		}
		if p.opts.present(c) {
			continue // joined with its first instance
		}
		start := len(p.joined)
		for _, more := range p.inst[k:] {
			if more.code == c {
				p.joined = append(p.joined, b[more.off:more.off+more.n]...)
			}
		}
		p.opts.set(c, p.joined[start:len(p.joined):len(p.joined)])
	}
	return nil
}

// messageType is option 53 when it is one byte; 0 otherwise.
func (p *packet) messageType() uint8 {
	if v := p.opts.get(optMessageType); len(v) == 1 {
		return v[0]
	}
	return 0
}

func (p *packet) broadcast() bool { return p.flags&flagBroadcast != 0 }

// addrOption reads a 4-byte address option; ok is false when the option
// is absent, of another length, or 0.0.0.0.
func (p *packet) addrOption(code uint8) (uint32, bool) {
	v := p.opts.get(code)
	if len(v) != 4 {
		return 0, false
	}
	a := binary.BigEndian.Uint32(v)
	return a, a != 0
}

// The broadcast bit of the flags field (RFC 2131 §2).
const flagBroadcast = 0x8000

// reply is a reply being built: the fixed fields and the options, each
// value pointing at bytes that stay put until the reply is encoded (the
// pool's options, the request's, or the reply's own buffer).
type reply struct {
	mt             uint8
	htype          byte
	xid            [4]byte
	flags          uint16
	ciaddr, yiaddr uint32
	giaddr         uint32
	chaddr         []byte
	opts           options
	own            []byte // values the reply makes (addresses, times, names)
}

// start begins a reply to req: its header fields from the request, the
// message type, the server identifier, and the echoed client identifier
// (RFC 6842) and relay agent information (RFC 3046).
func (r *reply) start(req *packet, mt uint8, serverID uint32) {
	r.opts.reset()
	r.own = r.own[:0]
	r.mt, r.htype, r.xid, r.flags = mt, req.htype, req.xid, req.flags
	r.ciaddr, r.yiaddr, r.giaddr, r.chaddr = 0, 0, req.giaddr, req.chaddr
	r.opts.set(optMessageType, r.bytes(mt))
	r.opts.set(optServerID, r.addr(serverID))
	if v := req.opts.get(optClientID); len(v) > 0 {
		r.opts.set(optClientID, v)
	}
	if v := req.opts.get(optRelayAgentInfo); len(v) > 0 {
		r.opts.set(optRelayAgentInfo, v)
	}
}

// bytes keeps v in the reply's own buffer and returns it there.
func (r *reply) bytes(v ...byte) []byte { return keep(r, v) }

// str keeps s in the reply's own buffer and returns it there.
func (r *reply) str(s string) []byte { return keep(r, s) }

func (r *reply) addr(a uint32) []byte {
	return r.bytes(byte(a>>24), byte(a>>16), byte(a>>8), byte(a))
}

func (r *reply) seconds(s uint32) []byte { return r.addr(s) }

// keep copies v to the end of the reply's own buffer and returns the copy,
// capped so that an append to it cannot reach the next value.
func keep[T ~string | ~[]byte](r *reply, v T) []byte {
	start := len(r.own)
	if cap(r.own)-start < len(v) {
		// A new buffer: values already handed out keep pointing at the
		// old one, which stays as it is.
		r.own = make([]byte, 0, max(512, 2*cap(r.own)+len(v)))
		start = 0
	}
	r.own = append(r.own, v...)
	return r.own[start:len(r.own):len(r.own)]
}

// Message types (option 53, RFC 2132 §9.6).
const (
	discoverType = 1
	offerType    = 2
	requestType  = 3
	declineType  = 4
	ackType      = 5
	nakType      = 6
	releaseType  = 7
	informType   = 8
)

// wirePool keeps the buffers replies are encoded into: a reply's buffer
// lives until the reply is sent (after its lease is on disk, for an ACK),
// then serves the next one. Safe for concurrent use.
type wirePool struct {
	mu   sync.Mutex
	free [][]byte
}

// maxFreeWires bounds the buffers kept for reuse.
const maxFreeWires = 4096

func (p *wirePool) get() []byte {
	if p != nil {
		p.mu.Lock()
		if n := len(p.free); n > 0 {
			b := p.free[n-1]
			p.free = p.free[:n-1]
			p.mu.Unlock()
			return b[:0]
		}
		p.mu.Unlock()
	}
	return make([]byte, 0, maxMessage)
}

// put takes back buffers whose replies have left.
func (p *wirePool) put(b []byte) {
	if p == nil || cap(b) < maxMessage {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxFreeWires {
		p.free = append(p.free, b)
	}
	p.mu.Unlock()
}
