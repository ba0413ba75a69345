package dns

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// clock is a settable time for cache tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// scripted is a terminal stage whose answer tests set; it counts calls.
type scripted struct {
	calls  atomic.Int32
	answer func(req *request) *dns.Msg
	gate   chan struct{} // if set, serve waits for it
}

func (s *scripted) serve(ctx context.Context, req *request) *dns.Msg {
	s.calls.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	req.by = byForward
	return s.answer(req)
}

func positive(ttl uint32) func(req *request) *dns.Msg {
	return func(req *request) *dns.Msg {
		m := req.reply(dns.RcodeSuccess)
		m.Answer = []dns.RR{aRecord(req.q.Name, netip.MustParseAddr("93.184.216.34"), ttl)}
		return m
	}
}

func negative(rcode int, soaTTL, minTTL uint32) func(req *request) *dns.Msg {
	return func(req *request) *dns.Msg {
		m := req.reply(rcode)
		m.Ns = []dns.RR{&dns.SOA{Hdr: header("example.com.", dns.TypeSOA, soaTTL), Ns: "ns.example.com.", Mbox: "h.example.com.", Minttl: minTTL}}
		return m
	}
}

func newTestCache(size int, p cachePolicy, next stage, clk *clock) *cacheStage {
	return &cacheStage{store: newCacheStore(size), flight: &flight[cacheKey, flightResult]{}, policy: p, now: clk.now, next: next}
}

var defaultPolicy = cachePolicy{maxTTL: 24 * time.Hour, negTTL: time.Hour}

func TestCacheTTL(t *testing.T) {
	tests := []struct {
		name    string
		policy  cachePolicy
		answer  func(*request) *dns.Msg
		cached  bool
		wantTTL time.Duration
	}{
		{"positive", defaultPolicy, positive(300), true, 300 * time.Second},
		{"max ttl", cachePolicy{maxTTL: time.Minute, negTTL: time.Hour}, positive(300), true, time.Minute},
		{"min ttl", cachePolicy{minTTL: time.Minute, maxTTL: time.Hour, negTTL: time.Hour}, positive(5), true, time.Minute},
		{"zero ttl", defaultPolicy, positive(0), false, 0},
		{"nxdomain soa minimum", defaultPolicy, negative(dns.RcodeNameError, 3600, 60), true, time.Minute},
		{"nxdomain soa ttl", defaultPolicy, negative(dns.RcodeNameError, 30, 600), true, 30 * time.Second},
		{"nodata", defaultPolicy, negative(dns.RcodeSuccess, 900, 900), true, 900 * time.Second},
		{"negative cap", cachePolicy{maxTTL: time.Hour, negTTL: 10 * time.Second}, negative(dns.RcodeNameError, 900, 900), true, 10 * time.Second},
		{"negative without soa", defaultPolicy, func(req *request) *dns.Msg { return req.reply(dns.RcodeNameError) }, false, 0},
		{"servfail", defaultPolicy, func(req *request) *dns.Msg { return req.reply(dns.RcodeServerFailure) }, false, 0},
		{"truncated", defaultPolicy, func(req *request) *dns.Msg { m := positive(60)(req); m.Truncated = true; return m }, false, 0},
	}
	for _, tt := range tests {
		c := &cacheStage{policy: tt.policy}
		e := c.entry(tt.answer(testRequest("www.example.com.", dns.TypeA)), time.Unix(1000, 0))
		if (e != nil) != tt.cached {
			t.Errorf("%s: cached %v, want %v", tt.name, e != nil, tt.cached)
			continue
		}
		if e == nil {
			continue
		}
		if kept := time.Duration(e.expires - e.stored); kept != tt.wantTTL {
			t.Errorf("%s: kept %v, want %v", tt.name, kept, tt.wantTTL)
		}
	}
}

func TestCacheHitAgesTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	up := &scripted{answer: positive(300)}
	c := newTestCache(100, defaultPolicy, up, clk)
	ask := func(name string, opts ...func(*dns.Msg)) (*dns.Msg, *request) {
		req := testRequest(name, dns.TypeA, opts...)
		return c.serve(context.Background(), req), req
	}
	ask("www.example.com.")
	clk.add(100 * time.Second)
	m, req := ask("WWW.example.com.")
	if up.calls.Load() != 1 || req.by != byCache {
		t.Fatalf("second query: %d upstream calls, by %s", up.calls.Load(), req.by)
	}
	if ttl := m.Answer[0].Header().Ttl; ttl != 200 {
		t.Errorf("TTL after 100 s: %d, want 200", ttl)
	}
	if m.Question[0].Name != "WWW.example.com." {
		t.Errorf("reply question %q, want the client's spelling", m.Question[0].Name)
	}
	// DO and CD are part of the key.
	ask("www.example.com.", withEDNS(1232, true))
	ask("www.example.com.", func(m *dns.Msg) { m.CheckingDisabled = true })
	if up.calls.Load() != 3 {
		t.Errorf("DO and CD queries: %d upstream calls, want 3", up.calls.Load())
	}
	clk.add(201 * time.Second)
	ask("www.example.com.")
	if up.calls.Load() != 4 {
		t.Errorf("after expiry: %d upstream calls, want 4", up.calls.Load())
	}
}

func TestCacheEviction(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newTestCache(cacheShards*4, defaultPolicy, &scripted{answer: positive(300)}, clk)
	for i := range 1000 {
		c.serve(context.Background(), testRequest(fmt.Sprintf("n%d.example.com.", i), dns.TypeA))
	}
	if n := c.store.len(); n > cacheShards*4 {
		t.Fatalf("cache holds %d entries, bound %d", n, cacheShards*4)
	}
	if c.store.evictions.Load() == 0 {
		t.Fatal("no evictions counted")
	}
}

func TestCacheMergesConcurrentMisses(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	up := &scripted{answer: positive(300), gate: make(chan struct{})}
	c := newTestCache(100, defaultPolicy, up, clk)
	const n = 20
	var wg sync.WaitGroup
	replies := make([]*dns.Msg, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = c.serve(context.Background(), testRequest("same.example.com.", dns.TypeA))
		}()
	}
	// Wait until all but the leader are waiting on the flight.
	deadline := time.Now().Add(5 * time.Second)
	key := cacheKey{name: "same.example.com.", qtype: dns.TypeA, qclass: dns.ClassINET}
	for c.flight.waiting(key) < n-1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(up.gate)
	wg.Wait()
	if up.calls.Load() != 1 {
		t.Fatalf("%d identical concurrent misses made %d upstream queries, want 1", n, up.calls.Load())
	}
	for i, m := range replies {
		if m == nil || len(m.Answer) != 1 {
			t.Fatalf("reply %d: %v", i, m)
		}
	}
	if replies[0].Answer[0] == replies[1].Answer[0] {
		t.Fatal("callers share records: each must get its own copy")
	}
}

func TestCacheServeStale(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := defaultPolicy
	p.serveStale = time.Hour
	up := &scripted{answer: positive(60)}
	c := newTestCache(100, p, up, clk)
	c.serve(context.Background(), testRequest("www.example.com.", dns.TypeA))
	clk.add(10 * time.Minute)
	up.answer = func(req *request) *dns.Msg { return req.reply(dns.RcodeServerFailure) }
	req := testRequest("www.example.com.", dns.TypeA)
	m := c.serve(context.Background(), req)
	if req.by != byStale || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != staleTTL {
		t.Fatalf("upstream failing: by %s, %v", req.by, m)
	}
	clk.add(2 * time.Hour)
	req = testRequest("www.example.com.", dns.TypeA)
	if m := c.serve(context.Background(), req); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("past the stale window: %v", m)
	}
}

func TestFlightWaiterGivesUp(t *testing.T) {
	var g flight[string, int]
	gate := make(chan struct{})
	go g.do(context.Background(), "k", func(<-chan struct{}) int { <-gate; return 1 }, nil)
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	v, joined, stopped := g.do(ctx, "k", func(<-chan struct{}) int { return 2 }, nil)
	if v != 0 || !joined || !stopped {
		t.Fatalf("waiter whose context ended: %d, joined %v, stopped %v", v, joined, stopped)
	}
	close(gate)
}

func TestFlightPanicReleasesWaiters(t *testing.T) {
	var g flight[string, int]
	func() {
		defer func() { recover() }()
		g.do(context.Background(), "k", func(<-chan struct{}) int { panic("boom") }, nil)
	}()
	if v, joined, _ := g.do(context.Background(), "k", func(<-chan struct{}) int { return 7 }, nil); v != 7 || joined {
		t.Fatalf("after a panic the key is still taken: %d %v", v, joined)
	}
}

// TestCacheStaleWhileRefreshing: a query for an expired name that the
// upstreams do not answer in time gets the stale answer, and the refresh
// goes on to fill the cache (RFC 8767 §5).
func TestCacheStaleWhileRefreshing(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := defaultPolicy
	p.serveStale, p.staleAfter = time.Hour, 20*time.Millisecond
	up := &scripted{answer: positive(60)}
	c := newTestCache(100, p, up, clk)
	c.serve(context.Background(), testRequest("www.example.com.", dns.TypeA))
	clk.add(10 * time.Minute)
	up.gate = make(chan struct{}) // the refresh hangs until released
	req := testRequest("www.example.com.", dns.TypeA)
	m := c.serve(context.Background(), req)
	if req.by != byStale || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != staleTTL {
		t.Fatalf("upstream late: by %s, %v", req.by, m)
	}
	close(up.gate)
	key := cacheKey{name: "www.example.com.", qtype: dns.TypeA, qclass: dns.ClassINET}
	eventually(t, "the refresh to fill the cache", func() bool {
		_, fresh := c.store.get(key, clk.now())
		return fresh
	})
	if up.calls.Load() != 2 {
		t.Fatalf("%d upstream calls, want 2", up.calls.Load())
	}
}

// TestCacheStaleAtOnceWhenAllDown: with every upstream of the route marked
// down there is no point in waiting: the stale answer goes out at once.
func TestCacheStaleAtOnceWhenAllDown(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := defaultPolicy
	p.serveStale, p.staleAfter = time.Hour, time.Hour
	up := &scripted{answer: positive(60)}
	c := newTestCache(100, p, up, clk)
	c.serve(context.Background(), testRequest("www.example.com.", dns.TypeA))
	clk.add(10 * time.Minute)
	u := newUpstream(netip.MustParseAddrPort("192.0.2.1:53"), newFakeNet(), nil, discard)
	u.down, u.losses, u.lastLoss = true, downAfter, time.Now()
	up.gate = make(chan struct{})
	defer close(up.gate)
	done := make(chan *request)
	go func() {
		req := testRequest("www.example.com.", dns.TypeA)
		req.route = &route{domain: ".", pool: &pool{upstreams: []*upstream{u}}}
		c.serve(context.Background(), req)
		done <- req
	}()
	select {
	case req := <-done:
		if req.by != byStale {
			t.Fatalf("answered by %s", req.by)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waited for upstreams that are all down")
	}
}

// TestCacheJoinKicks: a second client asking what is already in flight
// kicks the query, so the forwarder can ask again at once.
func TestCacheJoinKicks(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	kicked := make(chan bool, 1)
	up := stageFunc(func(ctx context.Context, req *request) *dns.Msg {
		select {
		case <-req.kick:
			kicked <- true
		case <-time.After(10 * time.Second):
			kicked <- false
		}
		return positive(60)(req)
	})
	c := newTestCache(100, defaultPolicy, up, clk)
	key := cacheKey{name: "same.example.com.", qtype: dns.TypeA, qclass: dns.ClassINET}
	go c.serve(context.Background(), testRequest("same.example.com.", dns.TypeA))
	eventually(t, "the first query in flight", func() bool {
		c.flight.mu.Lock()
		defer c.flight.mu.Unlock()
		return c.flight.calls[key] != nil
	})
	if m := c.serve(context.Background(), testRequest("same.example.com.", dns.TypeA)); m == nil || len(m.Answer) != 1 {
		t.Fatalf("the joined query: %v", m)
	}
	if !<-kicked {
		t.Fatal("the query in flight was not kicked")
	}
}
