package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

const (
	// maxFails consecutive timeouts mark an upstream down; a refused or
	// unreachable error marks it down at once.
	maxFails = 2
	// probeFirst and probeMax bound the wait between health probes of a
	// down upstream (it doubles after each failed probe).
	probeFirst = 250 * time.Millisecond
	probeMax   = 5 * time.Second
	// readSize is the buffer for upstream UDP answers; we advertise
	// udpSize, this leaves room for servers that send more.
	readSize = 4096
)

// dialer opens sockets towards upstreams: the part of Net they use.
type dialer interface {
	DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)
}

// upstreamDialer dials every upstream socket; a Dialer is safe for
// concurrent use and its zero value takes its deadline from the context.
var upstreamDialer = &net.Dialer{}

// upstream is one server queries are forwarded to, with its health. It
// lives across Set calls as long as some route still names it.
type upstream struct {
	addr netip.AddrPort
	dial dialer
	log  *slog.Logger

	down     atomic.Bool
	fails    atomic.Int32 // consecutive failures
	probing  atomic.Bool
	queries  atomic.Uint64
	failures atomic.Uint64
	srtt     atomic.Int64 // smoothed round-trip time, ns

	stopOnce sync.Once
	stop     chan struct{}
}

func newUpstream(addr netip.AddrPort, d dialer, log *slog.Logger) *upstream {
	return &upstream{addr: addr, dial: d, log: log.With("upstream", addr.String()), stop: make(chan struct{})}
}

// exchange sends q (its ID is replaced by a fresh random one) over UDP, and
// again over TCP if the answer came back truncated. The attempt ends with
// ctx.
func (u *upstream) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	u.queries.Add(1)
	start := time.Now()
	r, err := u.exchangeUDP(ctx, q)
	if err == nil && r.Truncated {
		r, err = u.exchangeTCP(ctx, q)
	}
	if err != nil {
		u.failed(err)
		return nil, fmt.Errorf("querying %s: %w", u.addr, err)
	}
	u.answered(time.Since(start))
	return r, nil
}

// exchangeUDP uses a new socket, so a new random source port, per query
// (the kernel randomizes ephemeral ports), and a new random ID. Packets
// that are not the answer to q are ignored until the deadline.
func (u *upstream) exchangeUDP(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	c, err := u.dial.DialContext(ctx, upstreamDialer, "udp", u.addr.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := watch(ctx, c)
	defer stop()
	q.Id = dns.Id()
	out, err := q.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(out); err != nil {
		return nil, err
	}
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) != nil || !answers(q, r) {
			continue // garbage or a spoofing attempt: keep waiting for ours
		}
		return r, nil
	}
}

func (u *upstream) exchangeTCP(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	c, err := u.dial.DialContext(ctx, upstreamDialer, "tcp", u.addr.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := watch(ctx, c)
	defer stop()
	co := &dns.Conn{Conn: c}
	q.Id = dns.Id()
	if err := co.WriteMsg(q); err != nil {
		return nil, ctxErr(ctx, err)
	}
	r, err := co.ReadMsg()
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	if !answers(q, r) {
		return nil, fmt.Errorf("answer over TCP does not match the query")
	}
	return r, nil
}

// watch makes c's I/O fail when ctx ends; stop undoes it.
func watch(ctx context.Context, c net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
}

// ctxErr prefers the context's reason over the socket's "i/o timeout".
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// answers reports whether r is the response to q: same ID and question.
func answers(q, r *dns.Msg) bool {
	if !r.Response || r.Id != q.Id || len(r.Question) != 1 {
		return false
	}
	a, b := q.Question[0], r.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

func (u *upstream) answered(rtt time.Duration) {
	u.fails.Store(0)
	old := u.srtt.Load()
	if old == 0 {
		u.srtt.Store(int64(rtt))
	} else {
		u.srtt.Store(old - old/8 + int64(rtt)/8)
	}
}

// failed counts a failure and marks the upstream down after maxFails in a
// row, or at once when the host said nobody listens there.
func (u *upstream) failed(err error) {
	u.failures.Add(1)
	if errors.Is(err, context.Canceled) {
		return // our side gave up (shutdown), not the upstream's fault
	}
	n := u.fails.Add(1)
	hard := errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
	if hard || n >= maxFails {
		u.markDown(err)
	}
}

func (u *upstream) markDown(err error) {
	if u.down.CompareAndSwap(false, true) {
		u.log.Warn("upstream down", "err", err)
	}
	if u.probing.CompareAndSwap(false, true) {
		go u.probe()
	}
}

// probe asks the down upstream for the root NS until it answers anything,
// then marks it up again.
func (u *upstream) probe() {
	wait := probeFirst
	for {
		t := time.NewTimer(wait)
		select {
		case <-u.stop:
			t.Stop()
			return
		case <-t.C:
		}
		q := new(dns.Msg)
		q.SetQuestion(".", dns.TypeNS)
		q.RecursionDesired = false
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := u.exchangeUDP(ctx, q)
		cancel()
		if err == nil {
			u.fails.Store(0)
			// In this order, a markDown racing with us starts a new probe
			// rather than finding this one still marked as running.
			u.probing.Store(false)
			u.down.Store(false)
			u.log.Info("upstream up")
			return
		}
		wait = min(2*wait, probeMax)
	}
}

// healthy reports whether queries should go to u.
func (u *upstream) healthy() bool { return !u.down.Load() }

// close stops the health probe.
func (u *upstream) close() { u.stopOnce.Do(func() { close(u.stop) }) }

func (u *upstream) status(domain string) UpstreamStatus {
	return UpstreamStatus{
		Addr: u.addr.String(), Domain: domain, Healthy: u.healthy(),
		Queries: u.queries.Load(), Failures: u.failures.Load(),
		RTTMilli: float64(u.srtt.Load()) / float64(time.Millisecond),
	}
}
