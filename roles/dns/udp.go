package dns

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatch is how many datagrams one recvmmsg/sendmmsg call moves.
const udpBatch = 64

// batchConn reads and writes datagrams in batches (recvmmsg and sendmmsg
// on Linux); ipv4.PacketConn and ipv6.PacketConn both are one.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// udpServer answers DNS over UDP on one socket. It does not use
// dns.Server: on the machines gatewayd targets a system call costs more
// than answering a local name, and dns.Server makes two per query plus a
// goroutine. One loop here reads up to udpBatch queries per call, answers
// those it can answer at once (local names, cache hits, refusals, errors)
// and sends their replies in one call; a query that must wait for an
// upstream goes to a goroutine of its own and is answered from there.
type udpServer struct {
	s        *Server
	conn     *net.UDPConn
	pc       batchConn
	wg       sync.WaitGroup // the read loop and the queries waiting upstream
	stopping atomic.Bool
}

func serveUDP(s *Server, conn *net.UDPConn, addr netip.AddrPort) *udpServer {
	u := &udpServer{s: s, conn: conn}
	if addr.Addr().Is4() {
		u.pc = ipv4.NewPacketConn(conn)
	} else {
		u.pc = ipv6.NewPacketConn(conn)
	}
	u.wg.Add(1)
	go u.readLoop()
	return u
}

// readLoop runs until the socket is closed.
func (u *udpServer) readLoop() {
	defer u.wg.Done()
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	bufs := make([][]byte, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, readBuffer)}
		out[i].Buffers = [][]byte{nil}
		bufs[i] = make([]byte, readBuffer)
	}
	for {
		n, err := u.pc.ReadBatch(in, 0)
		if err != nil {
			if u.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			u.s.log.Warn("reading DNS queries", "err", err)
			continue
		}
		k := 0
		for i := range in[:n] {
			from, _ := in[i].Addr.(*net.UDPAddr)
			if from == nil {
				continue
			}
			if reply := u.handle(in[i].Buffers[0][:in[i].N], from, bufs[k][:0]); reply != nil {
				out[k].Buffers[0], out[k].Addr = reply, from
				k++
			}
		}
		u.send(out[:k])
	}
}

// send writes the replies, in as few calls as the kernel takes them.
func (u *udpServer) send(out []ipv4.Message) {
	for len(out) > 0 {
		n, err := u.pc.WriteBatch(out, 0)
		if err != nil {
			u.s.log.Debug("writing DNS replies", "err", err)
			n = max(n, 1) // skip the datagram that failed
		}
		out = out[n:]
	}
}

// handle answers one datagram at once, into buf, or hands it to a
// goroutine and returns nil. It also returns nil for datagrams that get no
// reply at all.
func (u *udpServer) handle(raw []byte, from *net.UDPAddr, buf []byte) []byte {
	s := u.s
	if len(raw) < 12 {
		s.counters.malformed.Add(1)
		return nil
	}
	h := readHeader(raw)
	client := from.AddrPort().Addr().Unmap()
	switch s.acceptQuery(h) {
	case dns.MsgIgnore:
		return nil
	case dns.MsgReject:
		return pack(s.errorReply(headerOf(h), firstQuestion(raw, h), dns.RcodeFormatError, client), buf)
	case dns.MsgRejectNotImplemented:
		return pack(s.errorReply(headerOf(h), firstQuestion(raw, h), dns.RcodeNotImplemented, client), buf)
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		s.invalidQuery(raw, err)
		return pack(s.errorReply(headerOf(h), firstQuestion(raw, h), dns.RcodeFormatError, client), buf)
	}
	req, reply, slow := s.respond(client, false, m, true, raw, buf)
	if slow {
		u.wg.Add(1)
		go u.answerLater(client, from, m)
		return nil
	}
	if reply == nil {
		if req != nil {
			return req.wire
		}
		return nil
	}
	return pack(reply, buf)
}

// answerLater runs a query that waits for an upstream and sends its reply.
func (u *udpServer) answerLater(client netip.Addr, from *net.UDPAddr, m *dns.Msg) {
	defer u.wg.Done()
	_, reply, _ := u.s.respond(client, false, m, false, nil, nil)
	if reply == nil {
		return
	}
	if wire := pack(reply, nil); wire != nil {
		if _, err := u.conn.WriteToUDP(wire, from); err != nil {
			u.s.log.Debug("writing a DNS reply", "addr", from.String(), "err", err)
		}
	}
}

// close stops reading, lets the queries still waiting upstream send their
// replies for up to shutdownWait, and closes the socket (as
// dns.Server.ShutdownContext does).
func (u *udpServer) close() error {
	u.stopping.Store(true)
	u.conn.SetReadDeadline(time.Unix(1, 0)) // unblocks the read loop
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	t := time.NewTimer(shutdownWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	return u.conn.Close()
}

// readHeader reads the 12-byte DNS header.
func readHeader(raw []byte) dns.Header {
	be := binary.BigEndian
	return dns.Header{
		Id: be.Uint16(raw[0:]), Bits: be.Uint16(raw[2:]), Qdcount: be.Uint16(raw[4:]),
		Ancount: be.Uint16(raw[6:]), Nscount: be.Uint16(raw[8:]), Arcount: be.Uint16(raw[10:]),
	}
}

// headerOf reads the ID, opcode and RD of a raw header.
func headerOf(h dns.Header) dns.MsgHdr {
	const rd = 1 << 8
	return dns.MsgHdr{Id: h.Id, Opcode: int(h.Bits>>11) & 0xF, RecursionDesired: h.Bits&rd != 0}
}

// firstQuestion reads the first question of a raw query that may not
// parse as a whole; nil when it does not parse either.
func firstQuestion(raw []byte, h dns.Header) []dns.Question {
	if h.Qdcount == 0 {
		return nil
	}
	name, off, err := dns.UnpackDomainName(raw, 12)
	if err != nil || off+4 > len(raw) {
		return nil
	}
	be := binary.BigEndian
	return []dns.Question{{Name: name, Qtype: be.Uint16(raw[off:]), Qclass: be.Uint16(raw[off+2:])}}
}

// pack packs m into buf (or a new buffer when it is too small); nil when m
// cannot be packed.
func pack(m *dns.Msg, buf []byte) []byte {
	wire, err := m.PackBuffer(buf)
	if err != nil {
		return nil
	}
	return wire
}
