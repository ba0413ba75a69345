package dns

import (
	"errors"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

const (
	// workerIdle is how long a slow-query worker waits for the next query
	// before it leaves.
	workerIdle = 10 * time.Second
	// maxWorkers bounds the slow-query workers (busy ones: a new worker
	// starts only when none is idle). During an outage every client retry
	// that joins a flight and every stale refresh waits on one until the
	// query's deadline; without a bound that is a goroutine, its grown
	// stack and its query per retry. Not tied to MaxFlight: most workers
	// wait on a flight, holding no slot, and MaxFlight may be set to 65536.
	// 1024 stacks are a few MB; past them most queries are retries of
	// questions already asked, and SERVFAIL at once (overload) tells the
	// client what waiting would have.
	maxWorkers = 1024
)

// slowQuery is a UDP query that waits for an upstream: the socket it came
// on and the client's address as the kernel gave it (sa, of length salen).
type slowQuery struct {
	f      *os.File
	client netip.Addr
	sa     unix.RawSockaddrInet6
	salen  uint32
	m      *dns.Msg
	arrive time.Time // when the loop read it
}

// answerLater hands q to an idle worker, or to a new one when all are
// busy; it reports false when maxWorkers are busy (q is the caller's to
// answer: overloaded). Workers outlive their queries: a goroutine started
// for every forwarded query spent more on growing its stack down the
// pipeline to the upstream's socket than on the query (a tenth of its
// CPU).
func (u *udpServer) answerLater(q slowQuery) bool {
	select {
	case u.slow <- q:
		return true
	default:
	}
	if u.workers.Add(1) > maxWorkers { // (every loop calls this: no check-then-add)
		u.workers.Add(-1)
		return false
	}
	u.wg.Add(1)
	go u.worker(q)
	return true
}

// overloaded is the reply to r, from client, when no worker is left to
// wait for its upstreams: SERVFAIL, counted and logged as when MaxFlight
// queries are in flight. nil: the server stopped.
func (s *Server) overloaded(r *dns.Msg, client netip.Addr) *dns.Msg {
	p := s.pipe.Load()
	if p == nil {
		return nil
	}
	req := newRequest(r, client, false)
	req.by = byOverload
	return s.settle(p, req, req.reply(dns.RcodeServerFailure))
}

// worker answers q, then the queries handed to it, until it has been idle
// for workerIdle or the server closes.
func (u *udpServer) worker(q slowQuery) {
	defer u.wg.Done()
	defer u.workers.Add(-1)
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		u.answer(q)
		idle.Reset(workerIdle)
		select {
		case q = <-u.slow:
		case <-idle.C:
			return
		case <-u.done:
			return
		}
	}
}

// answer runs q through the pipeline, waiting for the upstreams, and sends
// the reply.
func (u *udpServer) answer(q slowQuery) {
	reply, by, _ := u.s.respond(q.client, false, q.m, false)
	if reply == nil {
		return
	}
	wire := pack(reply, nil)
	if wire == nil {
		return
	}
	rc, err := q.f.SyscallConn()
	if err != nil {
		return
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&wire[0])), uintptr(len(wire)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&q.sa)), uintptr(q.salen))
		if errno != 0 {
			serr = errno
		}
		return true
	})
	if err = errors.Join(err, serr); err != nil {
		u.s.log.Debug("writing a DNS reply", "addr", q.client.String(), "err", err)
		return
	}
	u.s.lat.shared.observe(by, time.Since(q.arrive), 1)
}
