package dns

import (
	"context"
	"errors"
	"time"

	"github.com/miekg/dns"
)

// errAllDown is returned when every upstream of a route is marked down.
var errAllDown = errors.New("every upstream is down")

// pool is the upstreams of one route, tried in order: the first healthy one
// gets the query, the next one gets it when that fails (failover).
type pool struct {
	upstreams []*upstream
	attempt   time.Duration // the longest one upstream may take
}

// exchange forwards q. An upstream that fails (or answers SERVFAIL or
// REFUSED) passes the query to the next healthy one. When every upstream is
// down it returns errAllDown at once: the probes bring them back.
func (p *pool) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	var last *dns.Msg
	var errs []error
	tried := 0
	for _, u := range p.upstreams {
		if !u.healthy() {
			continue
		}
		tried++
		actx, cancel := context.WithTimeout(ctx, p.attempt)
		r, err := u.exchange(actx, q)
		cancel()
		switch {
		case err != nil:
			errs = append(errs, err)
			if ctx.Err() != nil {
				return nil, errors.Join(errs...)
			}
		case r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused:
			last = r
		default:
			return r, nil
		}
	}
	if last != nil {
		return last, nil
	}
	if tried == 0 {
		return nil, errAllDown
	}
	return nil, errors.Join(errs...)
}

// forwarder is stage 6: it sends the query to the route's upstreams with a
// deadline for the whole query, and answers SERVFAIL when they fail or when
// MaxFlight queries are already in flight.
type forwarder struct {
	slots   chan struct{} // one per query in flight
	timeout time.Duration
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
	r, err := req.route.pool.exchange(ctx, upstreamQuery(req))
	req.by = byForward
	if err != nil || r.Rcode > 0xF {
		return req.reply(dns.RcodeServerFailure)
	}
	m := req.reply(r.Rcode)
	m.AuthenticatedData = r.AuthenticatedData
	m.Answer, m.Ns, m.Extra = r.Answer, r.Ns, withoutOPT(r.Extra)
	return m
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
