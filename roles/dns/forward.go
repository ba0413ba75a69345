package dns

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// forwarder is stage 6: it sends the query to the route's upstreams with a
// deadline for the whole query (exchange.go), scrubs the answer
// (scrub.go), and answers SERVFAIL when the upstreams fail or when
// MaxFlight queries are already in flight.
type forwarder struct {
	slots   chan struct{} // one per query in flight
	timeout time.Duration
	scrub   scrubber
}

func (f *forwarder) serve(ctx context.Context, req *request) *dns.Msg {
	if req.inline {
		req.slow = true
		return nil
	}
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	default:
		req.by = byOverload
		return req.reply(dns.RcodeServerFailure)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	p := req.route.pool
	r, err := p.exchange(ctx, upstreamQuery(req), req.kick)
	req.by = byForward
	if err != nil || !passed(r.Rcode) {
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
