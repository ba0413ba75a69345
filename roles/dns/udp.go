package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// udpBatch is how many datagrams one recvmmsg/sendmmsg call moves.
const udpBatch = 64

// udpServer answers DNS over UDP on the sockets of one address, one read
// loop per socket (loop.go). It does not use dns.Server, nor Go's
// netpoller: on the machines gatewayd targets the kernel's cost of a query
// is most of the cost of answering it, and a read through the netpoller
// adds a failed read, an epoll_wait and a wake-up between threads to every
// batch. Each loop blocks in recvmmsg on a thread of its own, answers the
// queries it can at once (local names and cache hits straight from the
// datagram's bytes, then refusals and errors through the general path),
// forwards the cache misses itself, and sends the replies with one
// sendmmsg. A query that must wait for something else (a serve-stale
// refresh, a flight that runs already, a CNAME target outside the zone)
// goes to a worker goroutine and is answered from there (udplater.go).
type udpServer struct {
	s        *Server
	socks    []*os.File     // blocking sockets, outside the netpoller (listen.go)
	loops    []*loop        // one per socket, made before any runs
	wg       sync.WaitGroup // the read loops and the slow-query workers
	stopping atomic.Bool
	slow     chan slowQuery // to an idle worker (udplater.go)
	workers  atomic.Int32   // the workers running, at most maxWorkers
	done     chan struct{}  // closed by close: idle workers leave
}

// newUDPServer makes the read loops of socks, none running yet (start).
// A loop that cannot be made (no descriptor left for its epoll or eventfd)
// fails the whole server: its socket would stay in the SO_REUSEPORT group,
// and the kernel would go on sending it a share of the clients for nobody
// to read. The loops made are closed then; the sockets are the caller's.
func newUDPServer(s *Server, socks []*os.File) (*udpServer, error) {
	u := &udpServer{s: s, socks: socks, slow: make(chan slowQuery), done: make(chan struct{})}
	for i, f := range socks {
		l, err := u.loopOn(f)
		if err != nil {
			u.discard()
			return nil, fmt.Errorf("read loop %d of %d: %w", i+1, len(socks), err)
		}
		u.loops = append(u.loops, l)
	}
	return u, nil
}

// loopOn makes the read loop of socket f.
func (u *udpServer) loopOn(f *os.File) (*loop, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var l *loop
	cerr := rc.Control(func(fd uintptr) { l, err = newLoop(u, f, int(fd)) })
	return l, errors.Join(cerr, err)
}

// start runs the read loops, each on a goroutine of its own.
func (u *udpServer) start() {
	for _, l := range u.loops {
		u.wg.Add(1)
		go u.readLoop(l)
	}
}

// discard closes the loops of a server that never started.
func (u *udpServer) discard() {
	for _, l := range u.loops {
		l.close()
	}
	u.loops = nil
}

// yieldEvery is how often a busy read loop passes through the scheduler.
// A goroutine that never does looks stuck to the runtime's monitor: it
// preempts it every 10 ms, takes its P while it waits in recvmmsg, and
// starts watching again at its fastest (every 20 µs), which costs more CPU
// than the queries.
const yieldEvery = 8 * time.Millisecond

// readLoop runs l until close. It holds the socket's read lock
// (RawConn.Read) for the loop's whole run, so the descriptor stays open
// until it returns, whatever close does meanwhile. It blocks in system
// calls, which keep its thread: the goroutine is not locked to it, as
// locking would only turn each of its rare reschedulings into a wake-up of
// that thread.
func (u *udpServer) readLoop(l *loop) {
	defer u.wg.Done()
	ran := false
	rc, err := l.f.SyscallConn()
	if err == nil {
		err = rc.Read(func(uintptr) bool {
			ran = true
			l.run()
			l.close() // its last replies go out while the descriptor is held
			return true
		})
	}
	if !ran {
		l.close() // nothing parked: it sends nothing
	}
	if err != nil && !u.stopping.Load() {
		u.s.log.Error("serving DNS over UDP", "err", err)
	}
}

// handleOn answers one datagram from client at once, into buf; or it
// returns the parsed query for a goroutine to answer (it waits for
// something the loop cannot wait for); or neither, for a datagram that
// gets no reply. q is the read loop's own. On the read loop l (nil: none)
// the queries the loop forwards itself come back parked, their reply to
// be sent later. by is the stage that answered a reply sent at once
// (byServer for the handler's own errors).
func (s *Server) handleOn(l *loop, raw []byte, client netip.Addr, q *wireQuery, buf []byte, now time.Time) (reply []byte, by stageID, later *dns.Msg, pk *parked) {
	defer func() {
		if v := recover(); v != nil { // respond recovers its own; this is the fast path's
			s.counters.panics.Add(1)
			s.log.Error("panic answering a query", "err", v)
			reply, by, later, pk = nil, byNone, nil, nil
		}
	}()
	if parseWireQuery(raw, q) {
		p := s.pipe.Load()
		if out, by, ok := p.answerWire(q, client, buf, now); ok {
			rcode := int(out[3] & 0x0F)
			s.counters.count(by, rcode)
			if p.qlog != nil {
				p.qlog.query(client, strings.Clone(q.lowerName()), q.qtype, rcode, by)
			}
			return out, by, nil, nil
		}
	}
	if len(raw) < 12 {
		s.counters.malformed.Add(1)
		return nil, byNone, nil, nil
	}
	h := readHeader(raw)
	switch s.acceptQuery(h) {
	case dns.MsgIgnore:
		return nil, byNone, nil, nil
	case dns.MsgReject:
		return pack(s.errorReply(headerOf(h), firstQuestion(raw, h), dns.RcodeFormatError, client), buf), byServer, nil, nil
	case dns.MsgRejectNotImplemented:
		return pack(s.errorReply(headerOf(h), firstQuestion(raw, h), dns.RcodeNotImplemented, client), buf), byServer, nil, nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		s.invalidQuery(raw, err)
		return pack(s.errorReply(headerOf(h), firstQuestion(raw, h), dns.RcodeFormatError, client), buf), byServer, nil, nil
	}
	r, by, slow, pk := s.respondOn(l, client, false, m, true)
	switch {
	case slow:
		return nil, byNone, m, nil
	case r == nil:
		return nil, byNone, nil, pk
	}
	return pack(r, buf), by, nil, nil
}

// close stops the read loops, lets the queries still waiting upstream
// send their replies for up to shutdownWait, and closes the sockets (as
// dns.Server.ShutdownContext does).
func (u *udpServer) close() error {
	u.stopping.Store(true)
	close(u.done)
	for _, f := range u.socks {
		// A blocked recvmmsg returns when its socket is shut down for
		// reading (the kernel wakes it, even unconnected).
		if rc, err := f.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RD) })
		}
	}
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	t := time.NewTimer(shutdownWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	var errs []error
	for _, f := range u.socks {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// batch is one read loop's memory for recvmmsg and sendmmsg, allocated
// once: the datagrams, their senders, the replies, and the system calls'
// headers pointing at them.
type batch struct {
	msgs    [udpBatch]unix.Mmsghdr
	iovs    [udpBatch]unix.Iovec
	names   [udpBatch]unix.RawSockaddrInet6 // room for either family
	bufs    [udpBatch][readBuffer]byte
	out     [udpBatch]unix.Mmsghdr
	outIovs [udpBatch]unix.Iovec
	replies [udpBatch][readBuffer]byte
	q       wireQuery
}

func newBatch() *batch {
	b := new(batch)
	for i := range b.msgs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(readBuffer)
		h := &b.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		b.out[i].Hdr.Iov = &b.outIovs[i]
		b.out[i].Hdr.SetIovlen(1)
	}
	return b
}

// recv blocks until at least one datagram is there and takes up to
// udpBatch (MSG_WAITFORONE: the rest only if already queued); with
// MSG_DONTWAIT in flags it does not block.
func (b *batch) recv(fd int, flags int) (int, error) {
	for i := range b.msgs {
		b.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.msgs[0])), udpBatch, uintptr(unix.MSG_WAITFORONE|flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func (b *batch) datagram(i int) []byte { return b.bufs[i][:b.msgs[i].Len] }

// from is the sender of datagram i.
func (b *batch) from(i int) netip.AddrPort {
	sa := &b.names[i]
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
	}
	return netip.AddrPort{}
}

// queue makes reply the k-th datagram to send, to the address sa of
// length salen (a sender's, as recvmmsg gave it).
func (b *batch) queue(k int, sa *unix.RawSockaddrInet6, salen uint32, reply []byte) {
	b.outIovs[k].Base = &reply[0]
	b.outIovs[k].SetLen(len(reply))
	b.out[k].Hdr.Name = (*byte)(unsafe.Pointer(sa))
	b.out[k].Hdr.Namelen = salen
}

// send writes the first k queued replies, in as few calls as the kernel
// takes them. It never blocks, so it needs no word with the scheduler
// (RawSyscall): the reply leaves sooner. A full send buffer or device
// queue (EAGAIN, ENOBUFS) drops the rest, as a full network would, where
// trying each of them would only fail again; a reply refused for its own
// destination (EPERM from a filter, EINVAL, ...) is skipped and the rest
// go on. Both count as unsent.
func (b *batch) send(fd uintptr, k int, s *Server) {
	for off := 0; off < k; {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.out[off])), uintptr(k-off), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			off += max(int(n), 1)
		case unix.EINTR:
		case unix.EAGAIN, unix.ENOBUFS:
			s.counters.unsent.Add(uint64(k - off))
			s.log.Debug("writing DNS replies", "err", errno, "dropped", k-off)
			return
		default:
			s.counters.unsent.Add(1)
			s.log.Debug("writing DNS replies", "err", errno)
			off++
		}
	}
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

// pack packs m into buf's capacity (or a new buffer when it is too
// small); nil when m cannot be packed.
func pack(m *dns.Msg, buf []byte) []byte {
	wire, err := m.PackBuffer(buf[:cap(buf)]) // PackBuffer goes by the length
	if err != nil {
		return nil
	}
	return wire
}
