package dns

import (
	"context"
	"encoding/binary"
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
	// downAfter losses in a row mark an upstream down (unbound's
	// TIMEOUT_COUNT_MAX): one lost packet is not evidence, three are.
	downAfter = 3
	// lossDecay forgets losses this old: sporadic ones never add up.
	lossDecay = 10 * time.Second
	// probeFirst and probeMax bound the wait between background probes of
	// an upstream that lost a query (it doubles after each failed probe).
	probeFirst = 250 * time.Millisecond
	probeMax   = 2 * time.Second
	// plainFor is how long an upstream that failed EDNS is asked without
	// it before EDNS is tried again (unbound's infra-host-ttl is 15 min).
	plainFor = time.Hour
	// portTries is how many random source ports are tried before the
	// kernel picks one.
	portTries = 5
	// readSize is the buffer for upstream UDP answers; we advertise
	// udpSize, this leaves room for servers that send more.
	readSize = 4096
)

// dialer opens sockets towards upstreams: the part of Net they use.
type dialer interface {
	DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)
}

// upstreamDialer dials the sockets whose port the kernel picks; a Dialer is
// safe for concurrent use and its zero value takes its deadline from the
// context.
var upstreamDialer = &net.Dialer{}

// upstream is one server queries are forwarded to, with what is known
// about it: its round-trip estimate, its recent losses, whether it needs
// queries without EDNS. It lives across Set calls as long as some route
// still names it.
type upstream struct {
	addr  netip.AddrPort
	dial  dialer
	avoid *portSet // source ports never drawn (ports.go); nil: none
	log   *slog.Logger

	mu         sync.Mutex
	rtt        rttInfo
	losses     int       // queries lost in a row (decaying, see tier)
	lastLoss   time.Time // when the latest of them was lost
	down       bool      // losses reached downAfter, or the host refused
	probing    bool      // a background probe runs
	plainUntil time.Time // ask without EDNS until then
	ednsWorked bool      // it has answered a query with EDNS
	ednsFails  int       // queries in a row since that it failed with EDNS and answered without

	queries  atomic.Uint64 // UDP queries sent, probes included
	failures atomic.Uint64 // losses and refusals

	stopOnce sync.Once
	stop     chan struct{}
}

func newUpstream(addr netip.AddrPort, d dialer, avoid *portSet, log *slog.Logger) *upstream {
	return &upstream{
		addr: addr, dial: d, avoid: avoid, log: log.With("upstream", addr.String()),
		rtt: newRTTInfo(), stop: make(chan struct{}),
	}
}

// Tiers order the upstreams of a query: those without recent losses
// first, then those with some, then those marked down, each in config
// order. A down upstream is still asked when nothing better is left: the
// first answer from it marks it up.
const (
	tierClean = iota
	tierLossy
	tierDown
)

func (u *upstream) tier() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.tierLocked(time.Now())
}

func (u *upstream) tierLocked(now time.Time) int {
	if u.losses > 0 && now.Sub(u.lastLoss) > lossDecay {
		u.losses, u.down = 0, false
	}
	switch {
	case u.down:
		return tierDown
	case u.losses > 0:
		return tierLossy
	}
	return tierClean
}

// healthy reports whether u is not marked down.
func (u *upstream) healthy() bool { return u.tier() != tierDown }

// timeout is how long to wait for u before asking again.
func (u *upstream) timeout() time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.rtt.rto
}

// answered takes an answer (any answer, whatever carried it) that came rtt
// after its query was sent: u is up.
func (u *upstream) answered(rtt time.Duration) {
	u.mu.Lock()
	u.rtt.sample(rtt)
	wasDown := u.down
	u.losses, u.down = 0, false
	u.mu.Unlock()
	if wasDown {
		u.log.Info("upstream up", "rtt", rtt)
	}
}

// lost records that a query sent with timeout wait got no answer within
// it. Only a query that waited u's whole timeout counts towards marking u
// down; one cut short by the deadline only backs the timeout off.
// It logs after unlocking, as refused and needsPlain do: a handler that
// blocks on its writer must not hold up every query to u.
func (u *upstream) lost(wait time.Duration, full bool) {
	u.failures.Add(1)
	u.mu.Lock()
	u.rtt.lost(wait)
	if !full {
		u.mu.Unlock()
		return
	}
	now := time.Now()
	u.tierLocked(now) // forget stale losses first
	u.losses++
	u.lastLoss = now
	wentDown := u.losses >= downAfter && !u.down
	u.down = u.down || wentDown
	losses, rto := u.losses, u.rtt.rto
	u.probeLocked()
	u.mu.Unlock()
	if wentDown {
		u.log.Warn("upstream down", "lost", losses, "rto", rto)
	}
}

// refused records that the host said nobody serves DNS there (ICMP port
// or host unreachable): that is evidence enough at once.
func (u *upstream) refused(err error) {
	u.failures.Add(1)
	u.mu.Lock()
	u.losses, u.lastLoss = downAfter, time.Now()
	wentDown := !u.down
	u.down = true
	u.probeLocked()
	u.mu.Unlock()
	if wentDown {
		u.log.Warn("upstream down", "err", err)
	}
}

func (u *upstream) probeLocked() {
	if !u.probing {
		u.probing = true
		go u.probe()
	}
}

// probe asks u for the root NS in the background while it has losses,
// until it answers anything: so a dead upstream is found out and a
// returning one brought back without a client waiting for it.
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
		u.mu.Lock()
		if u.tierLocked(time.Now()) == tierClean {
			u.probing = false
			u.mu.Unlock()
			return
		}
		rto := u.rtt.rto
		u.mu.Unlock()
		q := new(dns.Msg)
		q.SetQuestion(".", dns.TypeNS)
		q.RecursionDesired = false
		ctx, cancel := context.WithTimeout(context.Background(), rto)
		start := time.Now()
		_, err := u.exchangeOnce(ctx, q)
		cancel()
		switch {
		case err == nil:
			u.answered(time.Since(start))
		case isRefusal(err):
			u.refused(err)
		default:
			u.lost(rto, true)
		}
		wait = min(2*wait, probeMax)
	}
}

// exchangeOnce sends q once over UDP and waits for its answer until ctx
// ends (the probe's exchange).
func (u *upstream) exchangeOnce(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	c, id, err := u.sendUDP(ctx, wire)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := watch(ctx, c)
	defer stop()
	return readAnswer(c, id, q.Question[0], nil) // (a probe has no forwardStats to count in)
}

// sendUDP opens a socket to u from a random port and sends wire (a packed
// query) with a fresh random ID.
func (u *upstream) sendUDP(ctx context.Context, wire []byte) (net.Conn, uint16, error) {
	c, err := u.dialUDP(ctx)
	if err != nil {
		return nil, 0, err
	}
	u.queries.Add(1)
	id := dns.Id()
	out := append([]byte(nil), wire...)
	binary.BigEndian.PutUint16(out, id)
	if _, err := c.Write(out); err != nil {
		c.Close()
		return nil, 0, err
	}
	return c, id, nil
}

// dialUDP connects a UDP socket to u from a source port drawn from the
// whole unprivileged range, 1024–65535 (the kernel's ephemeral range is
// half of that), minus u.avoid: a spoofer must guess the port as well as
// the ID. A port in use is drawn again; after portTries the kernel picks
// one.
func (u *upstream) dialUDP(ctx context.Context) (net.Conn, error) {
	for range portTries {
		port := u.avoid.draw()
		if port == 0 {
			break
		}
		d := &net.Dialer{LocalAddr: &net.UDPAddr{Port: port}}
		c, err := u.dial.DialContext(ctx, d, "udp", u.addr.String())
		if !errors.Is(err, syscall.EADDRINUSE) {
			return c, err
		}
	}
	return u.dial.DialContext(ctx, upstreamDialer, "udp", u.addr.String())
}

// readAnswer reads from c until the answer to the query with id and
// question q arrives; anything else is garbage or a spoofing attempt: it
// is counted in unwanted (unless nil) and ignored, c being the query's
// only socket.
func readAnswer(c net.Conn, id uint16, q dns.Question, unwanted *atomic.Uint64) (*dns.Msg, error) {
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) == nil && answers(id, q, r) {
			return r, nil
		}
		if unwanted != nil {
			unwanted.Add(1)
		}
	}
}

// exchangeTCP asks q over TCP (after a truncated UDP answer).
func (u *upstream) exchangeTCP(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	c, err := u.dial.DialContext(ctx, upstreamDialer, "tcp", u.addr.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := watch(ctx, c)
	defer stop()
	co := &dns.Conn{Conn: c}
	m := q.Copy()
	m.Id = dns.Id()
	if err := co.WriteMsg(m); err != nil {
		return nil, ctxErr(ctx, err)
	}
	r, err := co.ReadMsg()
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	if !answers(m.Id, m.Question[0], r) {
		return nil, fmt.Errorf("answer over TCP from %s does not match the query", u.addr)
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

// answers reports whether r is the response to the query with id and
// question q.
func answers(id uint16, q dns.Question, r *dns.Msg) bool {
	if !r.Response || r.Id != id || len(r.Question) != 1 {
		return false
	}
	b := r.Question[0]
	return q.Qtype == b.Qtype && q.Qclass == b.Qclass && strings.EqualFold(q.Name, b.Name)
}

// isRefusal reports whether err says that nobody serves DNS at the
// address: an ICMP port, host or network unreachable.
func isRefusal(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// plain reports whether u is to be asked without EDNS.
func (u *upstream) plain() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return time.Now().Before(u.plainUntil)
}

// ednsAnswered records an answer to a query with EDNS that was no format
// error: EDNS works there.
func (u *upstream) ednsAnswered() {
	u.mu.Lock()
	u.ednsWorked, u.ednsFails = true, 0
	u.mu.Unlock()
}

// needsPlain records that u answered a query without EDNS after failing
// it with EDNS. Twice in a row (once for an upstream never heard with
// EDNS) is taken to mean that u, or a box on the way, does not do EDNS:
// it is asked without for plainFor. One query it fails with EDNS may be
// about that query alone, and losing EDNS loses DNSSEC.
func (u *upstream) needsPlain() {
	u.mu.Lock()
	u.ednsFails++
	if u.ednsWorked && u.ednsFails < 2 || time.Now().Before(u.plainUntil) {
		u.mu.Unlock()
		return
	}
	u.plainUntil = time.Now().Add(plainFor)
	u.mu.Unlock()
	u.log.Info("upstream fails EDNS: asking it without", "for", plainFor)
}

// close stops the health probe.
func (u *upstream) close() { u.stopOnce.Do(func() { close(u.stop) }) }

// closed reports whether no route names u any more.
func (u *upstream) closed() bool {
	select {
	case <-u.stop:
		return true
	default:
		return false
	}
}

func (u *upstream) status(domain string) UpstreamStatus {
	u.mu.Lock()
	now := time.Now()
	tier, rtt, plain := u.tierLocked(now), u.rtt, now.Before(u.plainUntil)
	u.mu.Unlock()
	return UpstreamStatus{
		Addr: u.addr.String(), Domain: domain, Healthy: tier != tierDown, Lossy: tier == tierLossy,
		Queries: u.queries.Load(), Failures: u.failures.Load(),
		RTTMilli: millis(rtt.srtt), RTOMilli: millis(rtt.rto), PlainDNS: plain,
	}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
