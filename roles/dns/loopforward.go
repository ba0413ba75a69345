package dns

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// Upstream sockets of a read loop. A socket opened through Net costs more
// than the rest of a forwarded query (Go's dial: socket, bind, connect,
// getsockname, getpeername, the netpoller's registration; then its close),
// so a loop keeps a pool of them per upstream and sends each attempt from
// one drawn at random: every socket is bound to a port drawn from the
// whole unprivileged range (upstream.dialUDP), carries at most portUses
// attempts and none after portLife, and is then replaced by a fresh one. An
// attempt has its own random ID on its socket, unique among the attempts
// in flight there, so an answer still tells which attempt it answers.
const (
	portPoolSize = 16          // sockets per upstream and loop
	portUses     = 64          // attempts one socket carries
	portLife     = time.Second // after this, a socket carries no new attempt
	upBatchSize  = 8           // upstream datagrams one recvmmsg takes
)

// upSock is one connected UDP socket of a loop towards an upstream.
type upSock struct {
	fd       int
	pool     *portPool
	slot     int
	opened   time.Time
	uses     int
	attempts map[uint16]*attempt // in flight on it, by ID
	carried  [portUses]uint16    // the IDs of the attempts it carried, by use
	retired  bool                // carries no new attempt; closed when the last is released
}

// carriedID reports whether id is that of an attempt s carried: an
// answer to it that comes after its exchange ended (a retransmission or
// another upstream answered first) is late, not unwanted.
func (s *upSock) carriedID(id uint16) bool {
	for _, c := range s.carried[:min(s.uses, portUses)] {
		if c == id {
			return true
		}
	}
	return false
}

// portPool is a loop's sockets towards one upstream.
type portPool struct {
	slots [portPoolSize]*upSock
}

// parked is a query a read loop forwards without waiting: its exchange,
// the client to reply to, and what the stages above the forwarder do with
// the answer. It is the exchange's transport on the loop.
type parked struct {
	l      *loop
	req    *request
	pipe   *pipeline
	x      *exchange
	f      *forwarder
	rebind *rebind                   // set when rebind protection filters the answer
	cache  *cacheStage               // set when the answer ends a cache flight:
	key    cacheKey                  // its key,
	call   *flightCall[flightResult] // the flight,
	start  time.Time                 // and when the miss began
	sa     unix.RawSockaddrInet6     // the client, as the kernel gave it
	salen  uint32                    // 0: no reply (see finish)
	arrive time.Time                 // when the query came (its batch's read)
	due    time.Time                 // when the exchange's timer or deadline is
	index  int                       // in loop.parked
	live   bool
	tcpCtx context.Context // for TCP retries, ends with the deadline
	cancel context.CancelFunc
}

func (l *loop) newParked(req *request, f *forwarder) *parked {
	return &parked{l: l, req: req, f: f, live: true, index: -1}
}

// park files pk, whose exchange has begun, under its due time.
func (l *loop) park(pk *parked) {
	pk.due = pk.x.due()
	heap.Push(&l.parked, pk)
}

func (pk *parked) send(a *attempt, wire []byte) error { return pk.l.send(a, wire) }
func (pk *parked) release(a *attempt)                 { pk.l.release(a) }

// tcp runs the TCP retry on a goroutine of its own (a connect and a round
// trip the loop must not wait for); its result comes back as a message.
func (pk *parked) tcp(a *attempt, q *dns.Msg) {
	if pk.tcpCtx == nil {
		pk.tcpCtx, pk.cancel = context.WithDeadline(pk.l.s.ctx, pk.x.deadline)
	}
	ctx, l := pk.tcpCtx, pk.l
	go func() {
		r, err := a.u.exchangeTCP(ctx, q)
		l.post(loopMsg{pk: pk, a: a, r: r, err: err, tcp: true})
	}()
}

// kick is called by a caller that joined pk's flight, on its own goroutine.
func (pk *parked) kick() { pk.l.post(loopMsg{pk: pk}) }

// send sends attempt a from a socket of the pool for a.u, with an ID
// unique on that socket. A datagram the kernel has no room for (EAGAIN,
// ENOBUFS: a burst filled the socket's buffer or the device's queue) is
// lost as on a congested link: the attempt stands and the retransmission
// timer asks again, the upstream is not failed for it. A refusal on a
// socket that carried attempts before is most likely the ICMP error one
// of those drew, reported by this send: the socket is retired and the
// attempt sent once more from a fresh one, whose refusal then counts.
func (l *loop) send(a *attempt, wire []byte) error {
	now := time.Now()
	s, err := l.socketFor(a.u, now)
	if err != nil {
		return err
	}
	id := uint16(rand.Uint32())
	for s.attempts[id] != nil {
		id++
	}
	out := l.out[:]
	if len(wire) > len(out) {
		out = make([]byte, len(wire))
	}
	out = out[:copy(out, wire)]
	binary.BigEndian.PutUint16(out, id)
	errno := sendOn(s, out)
	if isRefusal(errno) && s.uses > 0 {
		l.retire(s)
		if s, err = l.openSlot(a.u, s.pool, s.slot, now); err != nil {
			return err
		}
		errno = sendOn(s, out) // the fresh socket has no attempt: id is free
	}
	switch errno {
	case 0, unix.EAGAIN, unix.ENOBUFS:
	default:
		l.retire(s)
		return os.NewSyscallError("sendto", errno)
	}
	if s.uses < portUses {
		s.carried[s.uses] = id
	}
	s.uses++
	a.id, a.io = id, s
	s.attempts[id] = a
	a.u.queries.Add(1)
	return nil
}

// sendOn writes out on s without blocking.
func sendOn(s *upSock, out []byte) syscall.Errno {
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&out[0])), uintptr(len(out)), unix.MSG_DONTWAIT, 0, 0)
	return errno
}

// socketFor draws a socket of u's pool, replacing it when it has carried
// its share of attempts or lived its life.
func (l *loop) socketFor(u *upstream, now time.Time) (*upSock, error) {
	p := l.pools[u]
	if p == nil {
		p = new(portPool)
		l.pools[u] = p
	}
	i := rand.IntN(portPoolSize)
	if s := p.slots[i]; s != nil {
		if s.uses < portUses && now.Sub(s.opened) < portLife {
			return s, nil
		}
		l.retire(s)
	}
	return l.openSlot(u, p, i, now)
}

// openSlot opens a socket to u into slot i of p.
func (l *loop) openSlot(u *upstream, p *portPool, i int, now time.Time) (*upSock, error) {
	s, err := l.open(u, now)
	if err != nil {
		return nil, err
	}
	s.pool, s.slot = p, i
	p.slots[i] = s
	return s, nil
}

// open dials a socket to u through its Net, from a random port, and takes
// it into the loop: its own descriptor (the dialled one closed, which also
// takes it out of Go's netpoller), non-blocking, in the loop's epoll set.
func (l *loop) open(u *upstream, now time.Time) (*upSock, error) {
	c, err := u.dialUDP(l.s.ctx)
	if err != nil {
		return nil, err
	}
	fd := -1
	if sc, ok := c.(syscall.Conn); ok {
		fd, err = dupSocket(sc)
	} else {
		err = fmt.Errorf("the socket to %s is a %T, not a socket", u.addr, c)
	}
	c.Close()
	if err == nil {
		err = l.watch(fd)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		return nil, err
	}
	s := &upSock{fd: fd, opened: now, attempts: map[uint16]*attempt{}}
	l.socks[int32(fd)] = s
	return s, nil
}

// dupSocket duplicates c's descriptor (close-on-exec, and non-blocking as
// Go made it: the flag belongs to the socket, not the descriptor).
func dupSocket(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var serr error
	if err := rc.Control(func(s uintptr) { fd, serr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return fd, serr
}

// release forgets attempt a, whose exchange is over.
func (l *loop) release(a *attempt) {
	s, ok := a.io.(*upSock)
	if !ok {
		return
	}
	a.io = nil
	if s.attempts[a.id] == a {
		delete(s.attempts, a.id)
	}
	if s.retired && len(s.attempts) == 0 {
		l.closeSock(s)
	}
}

// retire takes s out of its pool: it carries no new attempt, and closes
// once its last one is released.
func (l *loop) retire(s *upSock) {
	if s.retired {
		return
	}
	s.retired = true
	if s.pool != nil && s.pool.slots[s.slot] == s {
		s.pool.slots[s.slot] = nil
	}
	if len(s.attempts) == 0 {
		l.closeSock(s)
	}
}

func (l *loop) closeSock(s *upSock) {
	if l.socks[int32(s.fd)] == s {
		delete(l.socks, int32(s.fd))
		unix.Close(s.fd) // leaves the epoll set with its last descriptor
	}
}

// sweepSockets retires the sockets past their life, and every socket of
// an upstream no route names any more.
func (l *loop) sweepSockets(now time.Time) {
	for u, p := range l.pools {
		gone, empty := u.closed(), true
		for _, s := range p.slots {
			if s != nil && (gone || now.Sub(s.opened) >= portLife) {
				l.retire(s)
			}
			empty = empty && (s == nil || s.retired)
		}
		if empty {
			delete(l.pools, u)
		}
	}
}

// readUpstream reads what came on s: answers go to the attempts they
// answer (by ID and question), late answers to attempts s carried are
// ignored, anything else is unwanted; an error (an ICMP refusal) fails
// every attempt on s, all to the same upstream, and retires s first, so
// that the next attempts go out on other sockets.
func (l *loop) readUpstream(s *upSock, now time.Time) {
	n, err := l.up.recv(s.fd)
	for i := range n {
		d := l.up.datagram(i)
		if len(d) < 12 {
			l.unwanted(s)
			continue
		}
		id := binary.BigEndian.Uint16(d)
		a := s.attempts[id]
		if a == nil {
			if !s.carriedID(id) {
				l.unwanted(s)
			}
			continue
		}
		r := new(dns.Msg)
		if r.Unpack(d) != nil || !answers(a.id, a.x.q.Question[0], r) {
			l.unwanted(s)
			continue
		}
		pk := a.x.t.(*parked)
		a.x.answered(a, r, now)
		l.check(pk, now)
	}
	if err == nil || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	err = os.NewSyscallError("recvmmsg", err)
	l.retire(s)
	for _, a := range s.attempts {
		pk := a.x.t.(*parked)
		a.x.failedAttempt(a, err)
		l.check(pk, now)
	}
}

// unwanted takes a datagram that came on s, so from the upstream's
// address and port (s is connected), that answers none of the attempts s
// carried: a blind spoofer's guess, most likely, or a broken upstream. It
// is counted, and s retired at once (unbound's unwanted-reply-threshold,
// at one: a socket costs little to replace), so that a spoofer who found
// its port has it for no further attempt. The attempts on s still take
// their answers there.
func (l *loop) unwanted(s *upSock) {
	l.s.counters.forward.unwanted.Add(1)
	l.retire(s)
}

// finish ends pk's exchange and sends the client its reply, after the
// stages above the forwarder have done their part; abort is why it ends
// before its exchange did (the server closes).
func (l *loop) finish(pk *parked, now time.Time, abort error) {
	heap.Remove(&l.parked, pk.index)
	pk.live = false
	if pk.cancel != nil {
		pk.cancel()
	}
	r, err := pk.x.end(now)
	if abort != nil && err != nil {
		err = errors.Join(abort, err)
	}
	m := l.settle(pk, r, err)
	// salen is set only when handleOn handed pk back to the loop (serve).
	// A query whose respondOn recovered from a panic after parking was
	// answered already (SERVFAIL, at once) and its parked self never got
	// the client's address: it must not send a second reply.
	if m == nil || pk.salen == 0 {
		return
	}
	l.room()
	if wire := pack(m, l.b.replies[l.k][:0]); wire != nil {
		l.b.queue(l.k, &pk.sa, pk.salen, wire)
		l.k++
		l.lat.observe(pk.req.by, now.Sub(pk.arrive), 1)
	}
}

// settle is the stages' work on the exchange's result, from the forwarder
// up: the reply, rebind protection, the cache; then the handler's
// (respond). A panic is counted and answered SERVFAIL, as respond does.
func (l *loop) settle(pk *parked, r *dns.Msg, err error) (m *dns.Msg) {
	req := pk.req
	flightOpen := pk.cache != nil
	defer func() {
		if v := recover(); v != nil {
			if flightOpen { // the callers that joined must not wait for ever
				pk.cache.flight.end(pk.key, pk.call, flightResult{})
			}
			m = l.s.panicReply(req.msg, v)
		}
	}()
	pk.f.release()
	m = pk.f.reply(req, r, err)
	if pk.rebind != nil {
		m = pk.rebind.filter(req, m)
	}
	if pk.cache != nil {
		flightOpen = false // settle ends it, panic or not
		m = pk.cache.settle(req, pk.key, pk.call, pk.start, m)
	}
	return l.s.settle(pk.pipe, req, m)
}

// upBatch is a loop's memory for reading upstream answers.
type upBatch struct {
	msgs [upBatchSize]unix.Mmsghdr
	iovs [upBatchSize]unix.Iovec
	bufs [upBatchSize][readSize]byte
}

// recv takes what is queued on fd, up to upBatchSize datagrams.
func (b *upBatch) recv(fd int) (int, error) {
	for i := range b.msgs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(readSize)
		b.msgs[i].Hdr.Iov = &b.iovs[i]
		b.msgs[i].Hdr.SetIovlen(1)
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.msgs[0])), upBatchSize, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func (b *upBatch) datagram(i int) []byte { return b.bufs[i][:b.msgs[i].Len] }
