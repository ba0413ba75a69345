package dns

import (
	"context"
	"errors"
	"time"

	"github.com/miekg/dns"
)

// forwarder is stage 6: it sends the query to the route's upstreams with a
// deadline for the whole query (exchange.go), scrubs the answer
// (scrub.go), and answers SERVFAIL when the upstreams fail or when
// MaxFlight queries are already in flight. On a UDP read loop it does not
// wait: it starts the exchange on the loop and parks the query there
// (loopforward.go), which finishes it when the exchange ends.
type forwarder struct {
	slots   chan struct{} // one per query in flight
	timeout time.Duration
	scrub   scrubber
}

func (f *forwarder) serve(ctx context.Context, req *request) *dns.Msg {
	if req.inline {
		if req.loop == nil {
			req.slow = true
			return nil
		}
		return f.park(req)
	}
	if !f.acquire() {
		req.by = byOverload
		return req.reply(dns.RcodeServerFailure)
	}
	defer f.release()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	r, err := req.route.pool.exchange(ctx, upstreamQuery(req), req.kick)
	return f.reply(req, r, err)
}

// park starts forwarding req on its read loop. It returns nil with
// req.parked set, or the reply when there is one at once (overload, or no
// upstream could be asked).
func (f *forwarder) park(req *request) *dns.Msg {
	if !f.acquire() {
		req.by = byOverload
		return req.reply(dns.RcodeServerFailure)
	}
	held := true
	pk := req.loop.newParked(req, f)
	defer func() {
		if held { // a panic: the slot and the attempts sent go back
			f.release()
			if pk.x != nil {
				pk.x.end(time.Now())
			}
		}
	}()
	x, err := req.route.pool.newExchange(upstreamQuery(req), pk, time.Now().Add(f.timeout))
	var r *dns.Msg
	if err == nil {
		pk.x = x
		x.begin()
		if !x.finished() {
			req.loop.park(pk)
			req.parked = pk
			held = false // the parked query releases it (loop.settle)
			return nil
		}
		r, err = x.end(time.Now())
	}
	held = false
	f.release()
	return f.reply(req, r, err)
}

func (f *forwarder) acquire() bool {
	select {
	case f.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (f *forwarder) release() { <-f.slots }

// reply is the client's reply to req from what the exchange gave: the
// upstream's answer, scrubbed; or SERVFAIL. A query whose deadline passed
// with every upstream silent is marked timedOut: over UDP the client is
// then sent nothing, and its own retry asks again (see respond).
func (f *forwarder) reply(req *request, r *dns.Msg, err error) *dns.Msg {
	req.by = byForward
	p := req.route.pool
	if err != nil || !passed(r.Rcode) {
		if errors.Is(err, errSilent) && !errors.Is(err, context.Canceled) {
			req.timedOut = true
			p.stats.timeouts.Add(1)
		}
		// An upstream's SERVFAIL, REFUSED, NOTIMP or FORMERR is about our
		// query to it, not the client's to us: the client gets SERVFAIL.
		return req.reply(dns.RcodeServerFailure)
	}
	m := req.reply(r.Rcode)
	m.AuthenticatedData = r.AuthenticatedData
	m.Answer, m.Ns, m.Extra = r.Answer, r.Ns, withoutOPT(r.Extra)
	if n := f.scrub.scrub(m, req.route.domain); n > 0 {
		p.stats.scrubbed.Add(uint64(n))
		m.AuthenticatedData = false
	}
	return m
}

// passed reports whether an upstream's rcode goes to the client as it is.
func passed(rcode int) bool {
	return rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError || rcode == dns.RcodeYXDomain
}

// upstreamQuery is what goes upstream for req: the question as the client
// spelled it, RD, the client's CD and DO, and AD to ask for the
// validation result (RFC 6840 §5.7). No other client EDNS option leaves the
// site.
func upstreamQuery(req *request) *dns.Msg {
	q := new(dns.Msg)
	q.Question = []dns.Question{req.q}
	q.RecursionDesired = true
	q.CheckingDisabled = req.cd
	q.AuthenticatedData = true
	q.SetEdns0(udpSize, req.do)
	return q
}
