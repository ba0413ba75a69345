package dns

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// staleTTL is the TTL of an answer served stale (RFC 8767 §4 suggests 30 s).
const staleTTL = 30

// cachePolicy is how long answers are kept.
type cachePolicy struct {
	minTTL, maxTTL time.Duration // bounds for every cached TTL
	negTTL         time.Duration // upper bound for negative answers (RFC 2308)
	serveStale     time.Duration // how long past expiry an answer may stand in for a failing upstream
	staleAfter     time.Duration // how long a query waits for the upstreams before it gets the stale answer
}

// flightResult is a merged miss's answer and the stage that gave it.
type flightResult struct {
	m        *dns.Msg
	by       stageID
	timedOut bool // every upstream was silent until the deadline
}

// cacheStage is stage 5: answers from the cache, and, on a miss, one
// upstream query for any number of identical concurrent misses.
type cacheStage struct {
	store  *cacheStore
	flight *flight[cacheKey, flightResult]
	policy cachePolicy
	now    func() time.Time
	next   stage
}

func (c *cacheStage) serve(ctx context.Context, req *request) *dns.Msg {
	key := cacheKey{name: req.name, qtype: req.q.Qtype, qclass: req.q.Qclass, do: req.do, cd: req.cd}
	now := c.now()
	e, fresh := c.store.get(key, now)
	if fresh {
		c.store.hits.Add(1)
		req.by = byCache
		return e.reply(req, now)
	}
	if req.inline {
		if e != nil || req.loop == nil {
			req.slow = true
			return nil
		}
		return c.park(ctx, req, key, now)
	}
	c.store.misses.Add(1)
	var stop <-chan time.Time
	if e != nil {
		// An expired answer may stand in: the refresh runs on its own and
		// the client gets the stale answer if it is late (RFC 8767 §5), at
		// once when every upstream is down.
		wait := c.policy.staleAfter
		if req.route != nil && req.route.pool.allDown() {
			wait = 0
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		stop = t.C
	}
	sub := *req // the refresh's own copy: the caller may leave before it ends
	res, joined, stopped := c.flight.do(ctx, key, func(kick <-chan struct{}) flightResult {
		sub.kick = kick
		m := c.next.serve(ctx, &sub)
		c.keep(key, m, now)
		return flightResult{m, sub.by, sub.timedOut}
	}, stop)
	if joined {
		c.store.merged.Add(1)
	}
	m := res.m
	req.by = res.by
	if e != nil && (stopped || m == nil || m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused) {
		c.store.stale.Add(1)
		req.by = byStale
		return e.staleReply(req)
	}
	req.timedOut = res.timedOut
	if m == nil {
		if joined || stopped {
			req.by = byForward
			return req.reply(dns.RcodeServerFailure) // our own deadline ended while waiting
		}
		return nil
	}
	return adopt(req, m)
}

// park forwards a miss from the read loop without waiting: it begins the
// flight for key and leaves the parked query the rest (settle). A miss
// whose flight runs already waits for it on a worker instead.
func (c *cacheStage) park(ctx context.Context, req *request, key cacheKey, now time.Time) *dns.Msg {
	call, ok := c.flight.begin(key)
	if !ok {
		req.slow = true
		return nil
	}
	c.store.misses.Add(1)
	handed := false
	defer func() {
		if !handed { // a panic: the callers that join must not wait for ever
			c.flight.end(key, call, flightResult{})
		}
	}()
	m := c.next.serve(ctx, req)
	if pk := req.parked; pk != nil {
		pk.cache, pk.key, pk.call, pk.start = c, key, call, now
		handed = true // the parked query ends the flight (loop.settle)
		c.flight.own(call, pk)
		return nil
	}
	// Answered at once: settle ends the flight, panic or not.
	handed = true
	return c.settle(req, key, call, now, m)
}

// settle ends the flight of a parked miss with m, the answer to req asked
// at now: m is cached, and the callers that joined the flight get it.
func (c *cacheStage) settle(req *request, key cacheKey, call *flightCall[flightResult], now time.Time, m *dns.Msg) *dns.Msg {
	ended := false
	defer func() {
		if !ended { // a panic: the callers that joined must not wait for ever
			c.flight.end(key, call, flightResult{})
		}
	}()
	c.keep(key, m, now)
	ended = true
	if !c.flight.end(key, call, flightResult{m, req.by, req.timedOut}) || m == nil {
		return m
	}
	return adopt(req, m) // shared: the others read it
}

// keep caches m, the answer to key asked at now, when it may be cached.
func (c *cacheStage) keep(key cacheKey, m *dns.Msg, now time.Time) {
	if ne := c.entry(m, now); ne != nil {
		c.store.put(key, ne)
	}
}

// entry turns an upstream answer into a cache entry, or nil when it must
// not be cached: only NOERROR and NXDOMAIN, never truncated, and negative
// answers only with an SOA to bound them (RFC 2308 §5).
func (c *cacheStage) entry(m *dns.Msg, now time.Time) *cacheEntry {
	if m == nil || m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return nil
	}
	ttl, ok := c.ttl(m)
	if !ok || ttl <= 0 {
		return nil
	}
	stored := &dns.Msg{MsgHdr: m.MsgHdr, Question: m.Question, Compress: true}
	stored.Id = 0
	stored.Answer = c.clampRRs(m.Answer, ttl)
	stored.Ns = c.clampRRs(m.Ns, ttl)
	stored.Extra = c.clampRRs(withoutOPT(m.Extra), ttl)
	wire, err := stored.Pack()
	if err != nil {
		return nil
	}
	t := now.UnixNano()
	e := &cacheEntry{wire: wire, stored: t, expires: t + int64(ttl)}
	if l, ok := layoutOf(wire); ok {
		e.layout = l
	}
	e.staleTo = e.expires + int64(c.policy.serveStale)
	return e
}

// ttl is how long m may be cached: the smallest TTL of its answer and
// authority records for a positive answer; for a negative one the SOA's
// TTL or MINIMUM, whichever is smaller (RFC 2308 §5), capped by negTTL.
// Both are then held within [minTTL, maxTTL].
func (c *cacheStage) ttl(m *dns.Msg) (time.Duration, bool) {
	var secs uint32
	if isNegative(m) {
		soa := findSOA(m.Ns)
		if soa == nil {
			return 0, false
		}
		secs = min(soa.Hdr.Ttl, soa.Minttl)
		secs = min(secs, uint32(c.policy.negTTL/time.Second))
	} else {
		secs = ^uint32(0)
		for _, rr := range m.Answer {
			secs = min(secs, rr.Header().Ttl)
		}
		for _, rr := range m.Ns {
			secs = min(secs, rr.Header().Ttl)
		}
	}
	d := time.Duration(secs) * time.Second
	d = min(d, c.policy.maxTTL)
	return max(d, c.policy.minTTL), true
}

// clampRRs copies rrs with every TTL held within [minTTL, ttl'] where ttl'
// is the larger of the entry's lifetime and maxTTL, so no record claims to
// live longer than the cache keeps it.
func (c *cacheStage) clampRRs(rrs []dns.RR, entry time.Duration) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	lo := uint32(c.policy.minTTL / time.Second)
	hi := uint32(max(entry, c.policy.maxTTL) / time.Second)
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp := dns.Copy(rr)
		h := cp.Header()
		h.Ttl = min(max(h.Ttl, lo), hi)
		if h.Rrtype == dns.TypeSOA {
			h.Ttl = uint32(entry / time.Second) // the negative TTL clients should use
		}
		out[i] = cp
	}
	return out
}

// isNegative reports whether m is NXDOMAIN or NODATA (no answer records).
func isNegative(m *dns.Msg) bool {
	return m.Rcode == dns.RcodeNameError || len(m.Answer) == 0
}

func findSOA(rrs []dns.RR) *dns.SOA {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// reply builds the answer for req from the entry, with every TTL lowered
// by the entry's age.
func (e *cacheEntry) reply(req *request, now time.Time) *dns.Msg {
	return e.unpack(req, uint32((now.UnixNano()-e.stored)/int64(time.Second)), 0)
}

// staleReply serves an expired entry with the TTL RFC 8767 suggests.
func (e *cacheEntry) staleReply(req *request) *dns.Msg {
	return e.unpack(req, 0, staleTTL)
}

// unpack makes req's reply from the stored answer: TTLs lowered by age
// (not below 0), or all set to fixed when it is not 0.
func (e *cacheEntry) unpack(req *request, age, fixed uint32) *dns.Msg {
	src := new(dns.Msg)
	if err := src.Unpack(e.wire); err != nil {
		return req.reply(dns.RcodeServerFailure) // cannot happen: we packed it
	}
	m := adoptHeader(req, src)
	m.Answer, m.Ns, m.Extra = src.Answer, src.Ns, src.Extra
	e.layout.turn.rotateRRs(m.Answer, req.msg.Id)
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			h := rr.Header()
			switch {
			case fixed != 0:
				h.Ttl = fixed
			case h.Ttl > age:
				h.Ttl -= age
			default:
				h.Ttl = 0
			}
		}
	}
	return m
}

// copyRRs deep-copies rrs.
func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

// adoptHeader starts req's reply from a stored or shared answer: the
// answer's rcode and flags, req's ID and question.
func adoptHeader(req *request, src *dns.Msg) *dns.Msg {
	m := req.reply(src.Rcode)
	m.Authoritative = false
	m.AuthenticatedData = src.AuthenticatedData
	return m
}

// adopt copies a shared answer (a merged miss) into req's own reply.
func adopt(req *request, src *dns.Msg) *dns.Msg {
	m := adoptHeader(req, src)
	m.Authoritative = src.Authoritative
	m.Truncated = src.Truncated
	m.Answer = copyRRs(src.Answer)
	m.Ns = copyRRs(src.Ns)
	m.Extra = copyRRs(withoutOPT(src.Extra))
	return m
}
