package dns

import (
	"container/heap"
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// loop is one UDP read loop: the listening socket it serves and, while it
// forwards queries, the upstream sockets, timers and messages it waits for
// with them. With nothing in flight it blocks in recvmmsg on the listening
// socket alone (the calls of a bare echo responder); with queries parked
// it blocks in epoll_wait on the listening socket, its upstream sockets
// (loopforward.go) and an eventfd that other goroutines wake it with, until
// the next retransmission timer or deadline. A forwarded query's UDP
// attempts are sent, retransmitted, hedged and read, and its reply sent,
// on this one thread, as dnsmasq does in its poll loop: no goroutine,
// channel or timer of Go's for them, no thread woken for them. What is not
// on the loop: a TCP retry after a truncated answer runs on a goroutine of
// its own and posts its result back (post), and the upstream sockets are
// dialled through Net (Go's net package) before the loop takes their
// descriptors (loopforward.go).
type loop struct {
	u      *udpServer
	s      *Server
	f      *os.File // the listening socket,
	fd     int      // its descriptor
	ep     int      // epoll
	evfd   int      // eventfd: post wakes the loop
	b      *batch
	k      int // replies queued in b.out
	events [udpBatch]unix.EpollEvent
	parked parkHeap                // the queries it forwards, by due time
	socks  map[int32]*upSock       // its upstream sockets, by descriptor
	pools  map[*upstream]*portPool // the same, by upstream
	up     *upBatch                // buffers for upstream datagrams
	out    [readSize]byte          // an attempt's query with its ID
	sweep  time.Time               // when to close sockets past their life
	lat    *loopLatency            // its query latencies (latency.go)
	quick  batchAnswers            // the batch's replies sent at once, by stage
	reads  loopFault               // recvmmsg on the listening socket failing
	waits  loopFault               // epoll_wait failing
	dead   bool                    // EBADF: a descriptor of the loop is gone, it stops

	mu     sync.Mutex // guards inbox and closed
	inbox  []loopMsg
	closed bool
	woken  atomic.Bool // the eventfd was written since the loop last read it
}

// loopMsg is what another goroutine tells a loop about one of its parked
// queries: a kick (a caller joined its flight), or a TCP retry's result.
type loopMsg struct {
	pk  *parked
	a   *attempt
	r   *dns.Msg
	err error
	tcp bool
}

// idleWake is how long a loop with nothing to do blocks before it looks at
// its upstream sockets again (the listening socket's SO_RCVTIMEO).
const idleWake = time.Second

func newLoop(u *udpServer, f *os.File, fd int) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	l := &loop{u: u, s: u.s, f: f, fd: fd, ep: ep, evfd: -1, b: newBatch(), up: new(upBatch),
		socks: map[int32]*upSock{}, pools: map[*upstream]*portPool{}, lat: u.s.lat.take()}
	l.evfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err == nil {
		err = errors.Join(l.watch(fd), l.watch(l.evfd))
	}
	if err == nil {
		tv := unix.NsecToTimeval(int64(idleWake))
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// watch adds fd to the loop's epoll set, for reading.
func (l *loop) watch(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	return os.NewSyscallError("epoll_ctl", unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev))
}

// run serves the listening socket until the server stops, then lets the
// queries it forwards finish for up to shutdownWait.
func (l *loop) run() {
	b := l.b
	yielded := time.Now()
	var stopped time.Time
	for {
		if l.u.stopping.Load() {
			if stopped.IsZero() {
				stopped = time.Now()
				l.stop()
			}
			if len(l.parked) == 0 || time.Since(stopped) > shutdownWait {
				return
			}
			l.wait()
			l.flush()
			if l.dead {
				return
			}
			continue
		}
		var n int
		var err error
		switch {
		case len(l.parked) == 0:
			n, err = b.recv(l.fd, 0)
		case l.wait():
			n, err = b.recv(l.fd, unix.MSG_DONTWAIT)
		}
		if l.u.stopping.Load() {
			continue
		}
		if l.reads.note(l, "reading DNS queries", err); l.dead {
			return
		}
		now := time.Now()
		for i := range n {
			l.serve(i, now)
		}
		l.flush()
		l.observe(now)
		if now.After(l.sweep) {
			l.sweepSockets(now)
			l.sweep = now.Add(idleWake)
		}
		if now.Sub(yielded) > yieldEvery {
			runtime.Gosched()
			yielded = now
		}
	}
}

// serve answers datagram i of the batch: at once, or parked until its
// upstreams answer, or on a worker that waits for them.
func (l *loop) serve(i int, now time.Time) {
	b := l.b
	l.room()
	client := b.from(i).Addr().Unmap()
	reply, by, later, pk := l.s.handleOn(l, b.datagram(i), client, &b.q, b.replies[l.k][:0], now)
	switch {
	case reply != nil:
		b.queue(l.k, &b.names[i], b.msgs[i].Hdr.Namelen, reply)
		l.k++
		l.quick.add(by)
	case pk != nil:
		pk.sa, pk.salen, pk.arrive = b.names[i], b.msgs[i].Hdr.Namelen, now
	case later != nil:
		if l.u.answerLater(slowQuery{l.f, client, b.names[i], b.msgs[i].Hdr.Namelen, later, now}) {
			return
		}
		if m := l.s.overloaded(later, client); m != nil {
			if wire := pack(m, b.replies[l.k][:0]); wire != nil {
				b.queue(l.k, &b.names[i], b.msgs[i].Hdr.Namelen, wire)
				l.k++
				l.quick.add(byOverload)
			}
		}
	}
}

// room makes room in the reply batch for one more.
func (l *loop) room() {
	if l.k == udpBatch {
		l.flush()
	}
}

// flush sends the queued replies.
func (l *loop) flush() {
	l.b.send(uintptr(l.fd), l.k, l.s)
	l.k = 0
}

// wait blocks until something it waits for is there, or the next timer is
// due, and handles it: upstream answers, messages, timers. It reports
// whether queries are waiting on the listening socket.
func (l *loop) wait() (queries bool) {
	ms := int(idleWake / time.Millisecond)
	if len(l.parked) > 0 {
		d := time.Until(l.parked[0].due)
		ms = min(ms, max(0, int((d+time.Millisecond-1)/time.Millisecond)))
	}
	n, err := unix.EpollWait(l.ep, l.events[:], ms)
	l.waits.note(l, "waiting for DNS answers", err)
	now := time.Now()
	for _, ev := range l.events[:max(n, 0)] {
		switch fd := int(ev.Fd); {
		case fd == l.fd:
			queries = true
		case fd == l.evfd:
			l.drain(now)
		default:
			if s := l.socks[ev.Fd]; s != nil {
				l.readUpstream(s, now)
			}
		}
	}
	l.expire(now)
	return queries
}

// expire acts on every parked query whose timer or deadline has come.
func (l *loop) expire(now time.Time) {
	for len(l.parked) > 0 && !l.parked[0].due.After(now) {
		pk := l.parked[0]
		if !now.Before(pk.x.deadline) {
			l.finish(pk, now, nil)
			continue
		}
		pk.x.timer(now)
		l.check(pk, now)
	}
}

// check finishes pk once its exchange is over, else files it under its
// next due time.
func (l *loop) check(pk *parked, now time.Time) {
	if !pk.live {
		return
	}
	if pk.x.finished() {
		l.finish(pk, now, nil)
		return
	}
	pk.due = pk.x.due()
	heap.Fix(&l.parked, pk.index)
}

// loopFault is a loop's memory of one of its system calls failing. An
// error that persists (a socket or epoll set gone bad) would otherwise be
// logged on every turn of the loop, and the loop would spin on it.
type loopFault struct {
	err    error     // the error last logged
	logged time.Time // and when
}

const (
	faultLogEvery = time.Second           // the same error is logged at most this often
	faultBackoff  = 10 * time.Millisecond // and the loop waits this long before it tries again
)

// note takes the call's error: it is logged when it differs from the last
// one logged or once faultLogEvery, and the loop backs off before it tries
// again. EBADF stops the loop (l.dead): its descriptor is gone.
func (f *loopFault) note(l *loop, what string, err error) {
	if err == nil || errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
		return
	}
	if errors.Is(err, unix.EBADF) {
		l.s.log.Error(what+": the loop stops", "err", err)
		l.dead = true
		return
	}
	now := time.Now()
	if err != f.err || now.Sub(f.logged) >= faultLogEvery {
		l.s.log.Warn(what, "err", err)
		f.err, f.logged = err, now
	}
	time.Sleep(faultBackoff)
}

// post tells the loop msg from another goroutine, and wakes it.
func (l *loop) post(msg loopMsg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.inbox = append(l.inbox, msg)
	if l.woken.CompareAndSwap(false, true) {
		one := uint64(1)
		unix.Write(l.evfd, (*[8]byte)(unsafe.Pointer(&one))[:])
	}
}

// drain takes the messages posted since it last ran.
func (l *loop) drain(now time.Time) {
	var n [8]byte
	unix.Read(l.evfd, n[:])
	l.woken.Store(false)
	l.mu.Lock()
	msgs := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	for _, m := range msgs {
		if !m.pk.live {
			continue
		}
		if m.tcp {
			m.pk.x.answeredTCP(m.a, m.r, m.err)
		} else {
			m.pk.x.kick()
		}
		l.check(m.pk, now)
	}
}

// stop stops serving the listening socket (shut down, it would be
// readable for ever) and, when the server closes, ends every parked query.
func (l *loop) stop() {
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.fd, nil)
	if l.s.ctx.Err() != nil {
		l.abort()
	}
}

// abort ends every parked query now.
func (l *loop) abort() {
	now := time.Now()
	for len(l.parked) > 0 {
		l.finish(l.parked[0], now, context.Canceled)
	}
	l.flush()
}

// close ends what is still parked and closes the loop's descriptors.
func (l *loop) close() {
	l.abort()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	for _, s := range l.socks {
		unix.Close(s.fd)
	}
	l.s.lat.give(l.lat)
	if l.evfd >= 0 {
		unix.Close(l.evfd)
	}
	unix.Close(l.ep)
}

// parkHeap orders parked queries by due time (container/heap).
type parkHeap []*parked

func (h parkHeap) Len() int           { return len(h) }
func (h parkHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h parkHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *parkHeap) Push(v any) {
	pk := v.(*parked)
	pk.index = len(*h)
	*h = append(*h, pk)
}
func (h *parkHeap) Pop() any {
	old := *h
	pk := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	pk.index = -1
	return pk
}
