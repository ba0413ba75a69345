package dns

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// maxAttempts bounds the UDP queries one client question sends upstream,
// retransmissions, hedges and EDNS fallbacks together.
const maxAttempts = 12

// errSilent is returned when the deadline passed and every attempt merely
// went unanswered: no upstream refused, failed or answered with an error.
// A UDP client is sent nothing then (see respond).
var errSilent = errors.New("no upstream answered in time")

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
	timeouts      atomic.Uint64 // queries whose deadline passed with every upstream silent
	unwanted      atomic.Uint64 // datagrams from an upstream that answer no query asked (readUpstream, readAnswer)
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

// transport carries an exchange's attempts: it sends each one from a
// randomly bound port with an ID of its own and reports what comes back to
// the exchange's handlers, on the goroutine that drives the exchange.
// exchangeconn.go has the socket-per-attempt one any Net serves; the UDP
// read loops carry their own attempts on pooled sockets, up to portUses
// attempts per socket (loopforward.go).
type transport interface {
	// send sends wire (a packed query) to a.u as attempt a.
	send(a *attempt, wire []byte) error
	// tcp asks q of a.u over TCP after a's answer came truncated.
	tcp(a *attempt, q *dns.Msg)
	// release forgets a: the exchange is over.
	release(a *attempt)
}

// attempt is one UDP query sent upstream, with an ID of its own on its
// socket, so an answer tells which attempt it answers and its round trip
// is measured without ambiguity (Karn's problem).
type attempt struct {
	x       *exchange
	u       *upstream
	id      uint16
	plain   bool // sent without EDNS
	sent    time.Time
	wait    time.Duration // how long before asking again
	full    bool          // wait was u's whole timeout
	counted bool          // its loss was recorded
	done    bool          // its answer or error came
	io      any           // the transport's own (its socket)
}

// exchange is one client question being forwarded, with the discipline of
// unbound's infrastructure cache: the first upstream (by tier, then config
// order) is asked; when its retransmission timeout passes without an
// answer the next one is asked too (a hedge), or the same one again when
// it is the only one (a retransmission), and the first good answer from
// any attempt wins. An attempt refused by the host, or answered with
// SERVFAIL, REFUSED, NOTIMP or FORMERR, moves on to the next upstream at
// once. A kick (a client asking again) asks again at once. The exchange is
// a state machine: its driver feeds it the transport's reports, the timer
// (wake) and kicks, and ends it at the deadline of the whole query.
type exchange struct {
	p        *pool
	t        transport
	q        *dns.Msg // with EDNS, as upstreamQuery made it
	plainQ   *dns.Msg // q without EDNS, made when needed
	wire     []byte
	plainW   []byte
	order    []*upstream
	failed   []bool // by index in order: refused, or answered with an error rcode
	next     int    // index in order of the next upstream to ask
	tries    []*attempt
	deadline time.Time // zero: none
	wake     time.Time // when to ask again; zero: not armed
	tcpBusy  bool      // a TCP retry runs: the timer and kicks wait for it
	kicked   bool      // a kick came while it ran
	answer   *dns.Msg  // the good answer, once there
	last     *dns.Msg  // the latest error answer (SERVFAIL, REFUSED, ...)
	lastErr  error

	// Room for the query and the usual few upstreams and attempts, so
	// that an exchange is one allocation, not five.
	wireBuf   [320]byte
	orderBuf  [4]*upstream
	failedBuf [4]bool
	triesBuf  [2]*attempt
}

// newExchange makes the exchange of q over t, which ends at deadline.
func (p *pool) newExchange(q *dns.Msg, t transport, deadline time.Time) (*exchange, error) {
	x := &exchange{p: p, t: t, q: q, deadline: deadline}
	wire, err := q.PackBuffer(x.wireBuf[:])
	if err != nil {
		return nil, err
	}
	x.wire = wire
	x.order = p.appendOrder(x.orderBuf[:0])
	x.failed = x.failedBuf[:0]
	x.failed = append(x.failed, make([]bool, len(x.order))...)
	x.tries = x.triesBuf[:0]
	return x, nil
}

// appendOrder appends p's upstreams sorted by tier, config order within a
// tier.
func (p *pool) appendOrder(out []*upstream) []*upstream {
	out = append(out, p.upstreams...)
	if len(out) < 2 {
		return out
	}
	var held [4]int
	tiers := held[:0]
	for _, u := range out {
		tiers = append(tiers, u.tier())
	}
	// An insertion sort: stable, and the lists are short.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && tiers[j] < tiers[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
			tiers[j], tiers[j-1] = tiers[j-1], tiers[j]
		}
	}
	return out
}

// finished reports whether the exchange has its answer, or cannot get a
// better one: every upstream failed it.
func (x *exchange) finished() bool {
	if x.answer != nil {
		return true
	}
	for _, f := range x.failed {
		if !f {
			return false
		}
	}
	return true
}

// due is when the driver is to call timer (wake) or end the exchange
// (its deadline), whichever comes first.
func (x *exchange) due() time.Time {
	if !x.wake.IsZero() && (x.deadline.IsZero() || x.wake.Before(x.deadline)) {
		return x.wake
	}
	return x.deadline
}

// begin sends the first attempt.
func (x *exchange) begin() { x.askNext() }

// askNext sends the next attempt: to the next upstream in order that has
// not failed this query, wrapping around (so a single upstream is asked
// again), and arms the timer for the one after. A socket that cannot be
// opened or written fails that upstream and the next one is tried.
func (x *exchange) askNext() {
	x.wake = time.Time{}
	for len(x.tries) < maxAttempts {
		u := x.pick()
		if u == nil {
			return
		}
		a, err := x.send(u, u.plain(), false)
		if err != nil {
			x.fail(u, err)
			continue
		}
		x.wake = a.sent.Add(a.wait)
		return
	}
}

// pick returns the next upstream to ask, nil when all failed the query.
func (x *exchange) pick() *upstream {
	for range x.order {
		i := x.next % len(x.order)
		x.next++
		if !x.failed[i] {
			return x.order[i]
		}
	}
	return nil
}

// send asks u, with EDNS or without, and counts it once it is sent: as
// an EDNS fallback (fallback set), or as a retransmission or a hedge when
// it is not the first attempt.
func (x *exchange) send(u *upstream, plain, fallback bool) (*attempt, error) {
	wire := x.wire
	if plain {
		wire = x.plainWire()
	}
	a := &attempt{x: x, u: u, plain: plain}
	if err := x.t.send(a, wire); err != nil {
		return nil, err
	}
	a.sent = time.Now()
	rto := u.timeout()
	a.wait, a.full = rto, true
	if !x.deadline.IsZero() {
		// Leave the deadline room for one more attempt after this one.
		if half := x.deadline.Sub(a.sent) / 2; half < rto {
			a.wait, a.full = max(half, minRTO), false
		}
	}
	switch {
	case fallback:
		x.p.stats.ednsFallbacks.Add(1)
	case len(x.tries) == 0:
	case slices.ContainsFunc(x.tries, func(b *attempt) bool { return b.u == u }):
		x.p.stats.retransmits.Add(1)
	default:
		x.p.stats.hedges.Add(1)
	}
	x.tries = append(x.tries, a)
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

// failedAttempt takes an attempt's error (a refusal, a socket error).
func (x *exchange) failedAttempt(a *attempt, err error) {
	if a.done || x.finished() {
		return
	}
	a.done = true
	x.fail(a.u, err)
	x.askAgain()
}

// answered takes the answer r to attempt a, which came at at.
func (x *exchange) answered(a *attempt, r *dns.Msg, at time.Time) {
	if a.done || x.finished() {
		return
	}
	a.done = true
	a.u.answered(at.Sub(a.sent))
	if !a.plain && (r.Rcode == dns.RcodeFormatError || r.Rcode == dns.RcodeNotImplemented) {
		// The upstream (or a box on the way) may not take EDNS: ask it
		// again without (RFC 6891 §7), and remember if that works.
		// With no attempt left the answer stands: the client gets its
		// SERVFAIL, not the silence of a query nobody answered.
		if len(x.tries) >= maxAttempts {
			x.settle(a, r)
			return
		}
		b, err := x.send(a.u, true, true)
		if err != nil {
			x.fail(a.u, err)
			x.askAgain()
			return
		}
		x.wake = b.sent.Add(b.wait)
		return
	}
	if r.Truncated {
		tq := x.q
		if a.plain {
			tq = x.plainQ
		}
		x.tcpBusy, x.wake = true, time.Time{}
		x.t.tcp(a, tq)
		return
	}
	x.settle(a, r)
}

// answeredTCP takes the result of the TCP retry of attempt a.
func (x *exchange) answeredTCP(a *attempt, r *dns.Msg, err error) {
	if !x.tcpBusy || x.finished() {
		return
	}
	x.tcpBusy = false
	if err != nil {
		x.fail(a.u, err)
		x.askAgain()
		return
	}
	x.settle(a, r)
	if !x.finished() && x.kicked {
		x.kick()
	}
}

// settle takes a whole answer to a: a good one ends the exchange, an
// error rcode fails the upstream for this query.
func (x *exchange) settle(a *attempt, r *dns.Msg) {
	switch r.Rcode {
	case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented, dns.RcodeFormatError:
		x.last = r
		x.failed[x.index(a.u)] = true
		x.askAgain()
		return
	}
	if a.plain {
		a.u.needsPlain()
	} else {
		a.u.ednsAnswered()
	}
	x.answer, x.wake = r, time.Time{}
}

// askAgain asks the next upstream unless a TCP retry is running.
func (x *exchange) askAgain() {
	if !x.tcpBusy && !x.finished() {
		x.askNext()
	}
}

// timer is called when wake has passed: the losses due are recorded and
// the next upstream is asked.
func (x *exchange) timer(now time.Time) {
	if x.tcpBusy || x.finished() {
		return
	}
	x.expire(now)
	x.askNext()
}

// kick asks again at once, if the last attempt is at least minRTO old: a
// client asked the same question again.
func (x *exchange) kick() {
	if x.finished() {
		return
	}
	if x.tcpBusy {
		x.kicked = true
		return
	}
	x.kicked = false
	if n := len(x.tries); n > 0 && n < maxAttempts && time.Since(x.tries[n-1].sent) >= minRTO {
		x.p.stats.clientRetries.Add(1)
		x.askNext()
	}
}

// fail marks u as failed for this query; a refusal marks it down too.
func (x *exchange) fail(u *upstream, err error) {
	x.failed[x.index(u)] = true
	x.lastErr = err
	if isRefusal(err) {
		u.refused(err)
	}
}

func (x *exchange) index(u *upstream) int { return slices.Index(x.order, u) }

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

// end closes the exchange, when it finished or its deadline came: the
// losses due by now are recorded, the attempts released. It returns the
// good answer; or the latest error answer, which is the client's SERVFAIL;
// or the error that failed the query: errSilent when every attempt went
// unanswered. (Whatever fails an upstream sets last or lastErr, and the
// route stage never forwards over a pool without upstreams: a finished
// exchange always has one of the three.)
func (x *exchange) end(now time.Time) (*dns.Msg, error) {
	x.expire(now)
	for _, a := range x.tries {
		x.t.release(a)
	}
	x.wake = time.Time{}
	switch {
	case x.answer != nil:
		return x.answer, nil
	case x.last != nil:
		return x.last, nil
	case x.lastErr != nil:
		return nil, x.lastErr
	}
	return nil, errSilent
}
