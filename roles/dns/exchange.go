package dns

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// maxAttempts bounds the UDP queries one client question sends upstream,
// retransmissions, hedges and EDNS fallbacks together.
const maxAttempts = 12

// errNoUpstream is returned when every upstream failed the query.
var errNoUpstream = errors.New("no upstream answered")

// pool is the upstreams of one route, in failover order.
type pool struct {
	upstreams []*upstream
	stats     *forwardStats
}

// forwardStats count what the forwarding discipline did, for Status.
type forwardStats struct {
	retransmits   atomic.Uint64 // a query sent again to an upstream already asked
	hedges        atomic.Uint64 // a query sent to another upstream while the first may still answer
	clientRetries atomic.Uint64 // a client's retry that made us ask again at once
	ednsFallbacks atomic.Uint64 // a query asked again without EDNS after FORMERR or NOTIMP
	scrubbed      atomic.Uint64 // records dropped from upstream answers
}

// allDown reports whether every upstream of p is marked down.
func (p *pool) allDown() bool {
	for _, u := range p.upstreams {
		if u.healthy() {
			return false
		}
	}
	return len(p.upstreams) > 0
}

// attempt is one UDP query sent upstream. Each has its own socket (a
// fresh random port) and ID, so an answer tells which one it answers and
// its round trip is measured without ambiguity (Karn's problem).
type attempt struct {
	u       *upstream
	conn    net.Conn
	plain   bool // sent without EDNS
	sent    time.Time
	wait    time.Duration // how long before asking again
	full    bool          // wait was u's whole timeout
	counted bool          // its loss was recorded
	done    bool          // its reader reported
}

// reply is what an attempt's reader reports: an answer or an error.
type reply struct {
	a   *attempt
	r   *dns.Msg
	err error
	at  time.Time
}

// exchange is one client question being forwarded: the attempts so far
// and what the upstreams said.
type exchange struct {
	p       *pool
	q       *dns.Msg // with EDNS, as upstreamQuery made it
	plainQ  *dns.Msg // q without EDNS, made when needed
	wire    []byte
	plainW  []byte
	order   []*upstream
	next    int                // index in order of the next upstream to ask
	failed  map[*upstream]bool // refused, or answered with an error rcode
	tries   []*attempt
	replies chan reply
	last    *dns.Msg // the latest error answer (SERVFAIL, REFUSED, ...)
	lastErr error
}

// exchange forwards q with the discipline of unbound's infrastructure
// cache: the first upstream (by tier, then config order) is asked; when
// its retransmission timeout passes without an answer the next one is
// asked too (a hedge), or the same one again when it is the only one (a
// retransmission), each attempt on a socket of its own, and the first
// good answer from any of them wins. An attempt refused by the host, or
// answered with SERVFAIL, REFUSED or NOTIMP, moves on to the next
// upstream at once. A receive on kick (a client asking again) asks again
// at once. It runs until ctx ends: the whole query's deadline.
func (p *pool) exchange(ctx context.Context, q *dns.Msg, kick <-chan struct{}) (*dns.Msg, error) {
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	x := &exchange{
		p: p, q: q, wire: wire, order: p.order(), failed: map[*upstream]bool{},
		replies: make(chan reply, maxAttempts),
	}
	defer x.close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	x.askNext(ctx, timer)
	for {
		if x.exhausted() {
			return x.result()
		}
		select {
		case rp := <-x.replies:
			if r, done := x.handle(ctx, rp, timer); done {
				return r, nil
			}
		case <-timer.C:
			x.expire(time.Now())
			x.askNext(ctx, timer)
		case <-kick:
			if n := len(x.tries); n > 0 && n < maxAttempts && time.Since(x.tries[n-1].sent) >= minRTO {
				p.stats.clientRetries.Add(1)
				x.askNext(ctx, timer)
			}
		case <-ctx.Done():
			x.expire(time.Now())
			r, err := x.result()
			if err != nil {
				err = errors.Join(ctx.Err(), err)
			}
			return r, err
		}
	}
}

// order is p's upstreams sorted by tier, config order within a tier.
func (p *pool) order() []*upstream {
	out := slices.Clone(p.upstreams)
	if len(out) > 1 {
		tiers := make(map[*upstream]int, len(out))
		for _, u := range out {
			tiers[u] = u.tier()
		}
		slices.SortStableFunc(out, func(a, b *upstream) int { return tiers[a] - tiers[b] })
	}
	return out
}

// askNext sends the next attempt: to the next upstream in order that has
// not failed this query, wrapping around (so a single upstream is asked
// again), and arms timer for the one after. A socket that cannot be
// opened or written fails that upstream and the next one is tried.
func (x *exchange) askNext(ctx context.Context, timer *time.Timer) {
	timer.Stop()
	for len(x.tries) < maxAttempts {
		u := x.pick()
		if u == nil {
			return
		}
		a, err := x.send(ctx, u, u.plain())
		if err != nil {
			x.fail(u, err)
			continue
		}
		timer.Reset(a.wait)
		return
	}
}

// pick returns the next upstream to ask, nil when all failed the query.
func (x *exchange) pick() *upstream {
	for range x.order {
		u := x.order[x.next%len(x.order)]
		x.next++
		if !x.failed[u] {
			return u
		}
	}
	return nil
}

// send asks u, with EDNS or without, and counts a retransmission or a
// hedge when it is not the first attempt.
func (x *exchange) send(ctx context.Context, u *upstream, plain bool) (*attempt, error) {
	wire := x.wire
	if plain {
		wire = x.plainWire()
	}
	conn, id, err := u.sendUDP(ctx, wire)
	if err != nil {
		return nil, err
	}
	rto := u.timeout()
	a := &attempt{u: u, conn: conn, plain: plain, sent: time.Now(), wait: rto, full: true}
	if dl, ok := ctx.Deadline(); ok {
		// Leave the deadline room for one more attempt after this one.
		if half := time.Until(dl) / 2; half < rto {
			a.wait, a.full = max(half, minRTO), false
		}
		conn.SetDeadline(dl)
	}
	switch {
	case len(x.tries) == 0:
	case slices.ContainsFunc(x.tries, func(b *attempt) bool { return b.u == u }):
		x.p.stats.retransmits.Add(1)
	default:
		x.p.stats.hedges.Add(1)
	}
	x.tries = append(x.tries, a)
	q := x.q.Question[0]
	go func() {
		r, err := readAnswer(conn, id, q)
		x.replies <- reply{a: a, r: r, err: err, at: time.Now()}
	}()
	return a, nil
}

func (x *exchange) plainWire() []byte {
	if x.plainW == nil {
		x.plainQ = x.q.Copy()
		x.plainQ.Extra = withoutOPT(x.plainQ.Extra)
		x.plainW, _ = x.plainQ.Pack() // packed once already, with OPT
	}
	return x.plainW
}

// handle takes one attempt's report. It returns the answer and true when
// the query is done.
func (x *exchange) handle(ctx context.Context, rp reply, timer *time.Timer) (*dns.Msg, bool) {
	a := rp.a
	a.done = true
	if rp.err != nil {
		if ctx.Err() == nil {
			x.fail(a.u, rp.err)
			x.askNext(ctx, timer)
		}
		return nil, false
	}
	a.u.answered(rp.at.Sub(a.sent))
	r := rp.r
	if !a.plain && (r.Rcode == dns.RcodeFormatError || r.Rcode == dns.RcodeNotImplemented) {
		// The upstream (or a box on the way) may not take EDNS: ask it
		// again without (RFC 6891 §7), and remember if that works.
		if len(x.tries) < maxAttempts {
			x.p.stats.ednsFallbacks.Add(1)
			b, err := x.send(ctx, a.u, true)
			if err != nil {
				x.fail(a.u, err)
				x.askNext(ctx, timer)
				return nil, false
			}
			timer.Stop()
			timer.Reset(b.wait)
		}
		return nil, false
	}
	if r.Truncated {
		tq := x.q
		if a.plain {
			tq = x.plainQ
		}
		tr, err := a.u.exchangeTCP(ctx, tq)
		if err != nil {
			x.fail(a.u, err)
			x.askNext(ctx, timer)
			return nil, false
		}
		r = tr
	}
	switch r.Rcode {
	case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented, dns.RcodeFormatError:
		x.last = r
		x.failed[a.u] = true
		x.askNext(ctx, timer)
		return nil, false
	}
	if a.plain {
		a.u.needsPlain()
	} else {
		a.u.ednsAnswered()
	}
	return r, true
}

// fail marks u as failed for this query; a refusal marks it down too.
func (x *exchange) fail(u *upstream, err error) {
	x.failed[u] = true
	x.lastErr = err
	if isRefusal(err) {
		u.refused(err)
	}
}

// expire records a loss for every attempt whose wait has passed without
// an answer, once each, before the next attempt is sent: so its timeout is
// backed off already.
func (x *exchange) expire(now time.Time) {
	for _, a := range x.tries {
		if !a.done && !a.counted && !now.Before(a.sent.Add(a.wait)) {
			a.counted = true
			a.u.lost(a.wait, a.full)
		}
	}
}

// exhausted reports whether the query cannot get a better answer: every
// upstream failed it.
func (x *exchange) exhausted() bool {
	return len(x.failed) == len(x.order)
}

func (x *exchange) result() (*dns.Msg, error) {
	if x.last != nil {
		return x.last, nil
	}
	if x.lastErr != nil {
		return nil, x.lastErr
	}
	return nil, errNoUpstream
}

// close records the losses due by now and closes every socket: their
// readers end and report into the buffered channel.
func (x *exchange) close() {
	x.expire(time.Now())
	for _, a := range x.tries {
		a.conn.Close()
	}
}
