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

// workerIdle is how long a slow-query worker waits for the next query
// before it leaves.
const workerIdle = 10 * time.Second

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
// busy. Workers outlive their queries: a goroutine started for every
// forwarded query spent more on growing its stack down the pipeline to
// the upstream's socket than on the query (a tenth of its CPU).
func (u *udpServer) answerLater(q slowQuery) {
	select {
	case u.slow <- q:
	default:
		u.wg.Add(1)
		go u.worker(q)
	}
}

// worker answers q, then the queries handed to it, until it has been idle
// for workerIdle or the server closes.
func (u *udpServer) worker(q slowQuery) {
	defer u.wg.Done()
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
