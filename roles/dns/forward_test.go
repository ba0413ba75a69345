package dns

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testForwarder is a forwarder over the fake network with one default route
// to addrs, in order.
func testForwarder(fn *fakeNet, timeout time.Duration, addrs ...string) (*forwarder, *route) {
	p := &pool{stats: &forwardStats{}}
	for _, a := range addrs {
		p.upstreams = append(p.upstreams, newUpstream(netip.MustParseAddrPort(a), fn, nil, discard))
	}
	f := &forwarder{slots: make(chan struct{}, 16), timeout: timeout, scrub: scrubber{local: "home.arpa."}}
	return f, &route{domain: ".", pool: p}
}

// eventually polls fn every 10 ms until it holds, failing the test after
// 10 s: a bound against hanging, not a measurement.
func eventually(t *testing.T, what string, fn func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !fn(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func forward(f *forwarder, r *route, name string, opts ...func(*dns.Msg)) (*dns.Msg, *request) {
	req := testRequest(name, dns.TypeA, opts...)
	req.route = r
	return f.serve(context.Background(), req), req
}

func closePool(r *route) {
	for _, u := range r.pool.upstreams {
		u.close()
	}
}

func TestForwardFailover(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{refused: true})
	fn.add("192.0.2.2:53", &fakeServer{answer: aAnswer("93.184.216.34", 300)})
	f, r := testForwarder(fn, 2*time.Second, "192.0.2.1:53", "192.0.2.2:53")
	defer closePool(r)
	m, req := forward(f, r, "www.example.com.")
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || req.by != byForward {
		t.Fatalf("first upstream refused: %v", m)
	}
	if r.pool.upstreams[0].healthy() {
		t.Fatal("a refusing upstream is still marked healthy")
	}
	forward(f, r, "www.example.com.")
	if n := fn.servers["192.0.2.1:53"].count("www.example.com."); n != 1 {
		t.Fatalf("the down upstream got %d queries, want 1 (then asked last)", n)
	}
}

func TestForwardTimeoutFailover(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{}) // drops everything
	fn.add("192.0.2.2:53", &fakeServer{answer: aAnswer("93.184.216.34", 300)})
	f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53", "192.0.2.2:53")
	defer closePool(r)
	// The first query waits the silent upstream's timeout, then hedges.
	if m, _ := forward(f, r, "www.example.com."); len(m.Answer) != 1 {
		t.Fatalf("with a silent first upstream: %v", m)
	}
	u := r.pool.upstreams[0]
	if st := u.status(""); !st.Healthy || !st.Lossy || r.pool.stats.hedges.Load() != 1 {
		t.Fatalf("after one loss: %+v, %d hedges", st, r.pool.stats.hedges.Load())
	}
	// The next ones go to the second upstream first, while the probes
	// gather the evidence that marks the first one down.
	if m, _ := forward(f, r, "www2.example.com."); len(m.Answer) != 1 || r.pool.stats.hedges.Load() != 1 {
		t.Fatalf("a lossy first upstream is asked after the clean one: %v, %d hedges", m, r.pool.stats.hedges.Load())
	}
	eventually(t, "the silent upstream to be marked down", func() bool { return !u.healthy() })
	if n := fn.servers["192.0.2.1:53"].count("www2.example.com."); n != 0 {
		t.Fatalf("the lossy upstream was asked %d times for the second name", n)
	}
}

func TestForwardAllDown(t *testing.T) {
	fn := newFakeNet()
	a := fn.add("192.0.2.1:53", &fakeServer{refused: true})
	fn.add("192.0.2.2:53", &fakeServer{refused: true})
	f, r := testForwarder(fn, 2*time.Second, "192.0.2.1:53", "192.0.2.2:53")
	defer closePool(r)
	if m, _ := forward(f, r, "www.example.com."); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("all refusing: %v", m)
	}
	if m, _ := forward(f, r, "www.example.com."); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("all down: %v", m)
	}
	if !r.pool.allDown() {
		t.Fatal("refusing upstreams are not marked down")
	}
	// The probe brings one back once it answers.
	a.mu.Lock()
	a.refused, a.answer = false, aAnswer("93.184.216.34", 300)
	a.mu.Unlock()
	eventually(t, "the probe to bring the upstream back", r.pool.upstreams[0].healthy)
	if m, _ := forward(f, r, "www.example.com."); len(m.Answer) != 1 {
		t.Fatalf("after the upstream came back: %v", m)
	}
}

// TestForwardAllRefusedIsFast: refusals are final, so a query whose
// upstreams all refuse ends without waiting for the deadline (an hour).
func TestForwardAllRefusedIsFast(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{refused: true})
	f, r := testForwarder(fn, time.Hour, "192.0.2.1:53")
	defer closePool(r)
	done := make(chan *dns.Msg)
	go func() {
		forward(f, r, "www.example.com.")
		m, _ := forward(f, r, "www.example.com.") // marked down: asked anyway
		done <- m
	}()
	select {
	case m := <-done:
		if m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("every upstream refusing: %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a refused query waited for its deadline")
	}
}

// TestForwardRetransmits: the only upstream loses the first copy of each
// query; the server asks it again after its timeout, and every query is
// answered without it being marked down (one loss at a time is no
// evidence).
func TestForwardRetransmits(t *testing.T) {
	fn := newFakeNet()
	srv := fn.add("192.0.2.1:53", &fakeServer{answer: dropFirst(aAnswer("93.184.216.34", 300))})
	f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53")
	defer closePool(r)
	for i := range 5 {
		name := fmt.Sprintf("n%d.example.com.", i)
		if m, _ := forward(f, r, name); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Fatalf("%s over a lossy link: %v", name, m)
		}
		if n := srv.count(name); n != 2 {
			t.Fatalf("%s sent %d times, want 2", name, n)
		}
	}
	if got := r.pool.stats.retransmits.Load(); got != 5 {
		t.Fatalf("%d retransmissions, want 5", got)
	}
	if !r.pool.upstreams[0].healthy() {
		t.Fatal("a lossy upstream was marked down")
	}
}

// TestForwardSlowUpstream: an upstream that takes longer than its timeout
// is asked again, and the first answer to any copy is taken: the deadline
// is the configured timeout.
func TestForwardSlowUpstream(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{answer: aAnswer("93.184.216.34", 300), delay: 1500 * time.Millisecond})
	f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53")
	defer closePool(r)
	if m, _ := forward(f, r, "slow.example.com."); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("an answer past the RTO, within the timeout: %v", m)
	}
	if r.pool.stats.retransmits.Load() == 0 {
		t.Fatal("no retransmission while waiting")
	}
	if !r.pool.upstreams[0].healthy() {
		t.Fatal("a slow upstream that answered is marked down")
	}
}

// TestForwardClientRetry: a kick (another client asking the same question
// while it waits upstream) makes the server ask again at once instead of
// waiting for its timeout.
func TestForwardClientRetry(t *testing.T) {
	fn := newFakeNet()
	srv := fn.add("192.0.2.1:53", &fakeServer{answer: dropFirst(aAnswer("93.184.216.34", 300))})
	f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53")
	defer closePool(r)
	u := r.pool.upstreams[0]
	u.mu.Lock()
	u.rtt.rto = maxRTO // the timeout alone would ask again only after 1 s
	u.mu.Unlock()
	kick := make(chan struct{}, 1)
	go func() {
		for srv.count("retry.example.com.") == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(2 * minRTO)
		kick <- struct{}{}
	}()
	req := testRequest("retry.example.com.", dns.TypeA)
	req.route, req.kick = r, kick
	if m := f.serve(context.Background(), req); len(m.Answer) != 1 {
		t.Fatalf("after the client's retry: %v", m)
	}
	if got := r.pool.stats.clientRetries.Load(); got != 1 {
		t.Fatalf("%d client retries counted, want 1", got)
	}
	if n := srv.count("retry.example.com."); n != 2 {
		t.Fatalf("asked %d times, want 2: the kick's copy answered", n)
	}
}

// TestForwardEDNSFallback: an upstream that answers FORMERR to EDNS is
// asked again without it, and remembered as one that needs plain DNS.
func TestForwardEDNSFallback(t *testing.T) {
	fn := newFakeNet()
	plainOnly := answerWith(func(q *dns.Msg) *dns.Msg {
		if q.IsEdns0() != nil {
			return new(dns.Msg).SetRcode(q, dns.RcodeFormatError)
		}
		m := new(dns.Msg).SetReply(q)
		m.Answer = []dns.RR{aRecord(q.Question[0].Name, netip.MustParseAddr("93.184.216.34"), 300)}
		return m
	})
	srv := fn.add("192.0.2.1:53", &fakeServer{answer: plainOnly})
	f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53")
	defer closePool(r)
	for _, name := range []string{"a.example.com.", "b.example.com."} {
		if m, _ := forward(f, r, name, withEDNS(1232, true)); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Fatalf("%s from an upstream without EDNS: %v", name, m)
		}
	}
	if got := srv.questions(); !slices.Equal(got, []string{"a.example.com. A edns", "a.example.com. A", "b.example.com. A"}) {
		t.Fatalf("the upstream was asked %v", got)
	}
	if got := r.pool.stats.ednsFallbacks.Load(); got != 1 {
		t.Fatalf("%d EDNS fallbacks, want 1", got)
	}
	if st := r.pool.upstreams[0].status(""); !st.PlainDNS {
		t.Fatalf("status %+v: plain DNS not remembered", st)
	}
}

// TestForwardEDNSFallbackAfterEDNS: an upstream that answered EDNS before
// is switched to plain DNS only after two fallbacks in a row: one FORMERR
// may be about that query alone.
func TestForwardEDNSFallbackAfterEDNS(t *testing.T) {
	fn := newFakeNet()
	var formerr atomic.Bool
	srv := fn.add("192.0.2.1:53", &fakeServer{answer: answerWith(func(q *dns.Msg) *dns.Msg {
		if formerr.Load() && q.IsEdns0() != nil {
			return new(dns.Msg).SetRcode(q, dns.RcodeFormatError)
		}
		m := new(dns.Msg).SetReply(q)
		m.Answer = []dns.RR{aRecord(q.Question[0].Name, netip.MustParseAddr("93.184.216.34"), 300)}
		return m
	})})
	f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53")
	defer closePool(r)
	forward(f, r, "before.example.com.")
	formerr.Store(true)
	for _, name := range []string{"a.example.com.", "b.example.com.", "c.example.com."} {
		if m, _ := forward(f, r, name); len(m.Answer) != 1 {
			t.Fatalf("%s: %v", name, m)
		}
	}
	want := []string{"before.example.com. A edns", "a.example.com. A edns", "a.example.com. A", "b.example.com. A edns", "b.example.com. A", "c.example.com. A"}
	if got := srv.questions(); !slices.Equal(got, want) {
		t.Fatalf("the upstream was asked %v, want %v", got, want)
	}
}

// TestForwardUpstreamErrors: NOTIMP and FORMERR from an upstream are about
// our query, not the client's: the client gets SERVFAIL.
func TestForwardUpstreamErrors(t *testing.T) {
	for _, rcode := range []int{dns.RcodeNotImplemented, dns.RcodeFormatError, dns.RcodeRefused, dns.RcodeServerFailure} {
		fn := newFakeNet()
		fn.add("192.0.2.1:53", &fakeServer{answer: answerWith(func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(q, rcode) })})
		f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53")
		if m, _ := forward(f, r, "www.example.com."); m.Rcode != dns.RcodeServerFailure {
			t.Errorf("upstream %s: client got %s", dns.RcodeToString[rcode], dns.RcodeToString[m.Rcode])
		}
		closePool(r)
	}
}

// TestForwardTopBitTTL: a TTL with the top bit set is 0 (RFC 2181 §8).
func TestForwardTopBitTTL(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{answer: aAnswer("93.184.216.34", 1<<31+1)})
	f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53")
	defer closePool(r)
	m, _ := forward(f, r, "www.example.com.")
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 0 {
		t.Fatalf("top-bit TTL passed on: %v", m)
	}
	if e := (&cacheStage{policy: defaultPolicy}).entry(m, time.Now()); e != nil {
		t.Fatal("an answer with TTL 0 would be cached")
	}
}

// TestForwardSourcePorts: upstream queries come from random ports over the
// whole unprivileged range, not only the kernel's ephemeral range.
func TestForwardSourcePorts(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{answer: aAnswer("93.184.216.34", 300)})
	f, r := testForwarder(fn, 4*time.Second, "192.0.2.1:53")
	defer closePool(r)
	for i := range 200 {
		forward(f, r, fmt.Sprintf("n%d.example.com.", i))
	}
	low := 0
	for _, p := range fn.ports {
		if p < 1024 || p > 65535 {
			t.Fatalf("source port %d", p)
		}
		if p < 32768 {
			low++
		}
	}
	if len(fn.ports) != 200 || low == 0 || low == 200 {
		t.Fatalf("%d ports, %d of them below 32768", len(fn.ports), low)
	}
}

func TestForwardTruncatedRetriesTCP(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{answer: func(q *dns.Msg, tcp bool) []*dns.Msg {
		m := new(dns.Msg).SetReply(q)
		if !tcp {
			m.Truncated = true
			return []*dns.Msg{m}
		}
		for i := range 50 {
			m.Answer = append(m.Answer, aRecord(q.Question[0].Name, netip.AddrFrom4([4]byte{93, 184, 216, byte(i)}), 60))
		}
		return []*dns.Msg{m}
	}})
	f, r := testForwarder(fn, 2*time.Second, "192.0.2.1:53")
	defer closePool(r)
	m, _ := forward(f, r, "big.example.com.")
	if len(m.Answer) != 50 || m.Truncated {
		t.Fatalf("after the TCP retry: %d answers, TC %v", len(m.Answer), m.Truncated)
	}
	if fn.dialCount("tcp 192.0.2.1:53") != 1 {
		t.Fatalf("TCP dials: %d", fn.dialCount("tcp 192.0.2.1:53"))
	}
}

func TestForwardRandomIDs(t *testing.T) {
	fn := newFakeNet()
	s := fn.add("192.0.2.1:53", &fakeServer{answer: aAnswer("93.184.216.34", 300)})
	f, r := testForwarder(fn, 2*time.Second, "192.0.2.1:53")
	defer closePool(r)
	for range 64 {
		forward(f, r, "www.example.com.")
	}
	seen := map[uint16]bool{}
	for _, id := range s.ids {
		seen[id] = true
	}
	if len(seen) < 60 {
		t.Fatalf("64 upstream queries used %d distinct IDs", len(seen))
	}
	if fn.dialCount("udp 192.0.2.1:53") != 64 {
		t.Fatalf("64 queries used %d sockets, want one each (a new source port)", fn.dialCount("udp 192.0.2.1:53"))
	}
}

func TestForwardIgnoresSpoofedAnswers(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{answer: func(q *dns.Msg, _ bool) []*dns.Msg {
		wrongID := new(dns.Msg).SetReply(q)
		wrongID.Id ^= 0x5555
		wrongID.Answer = []dns.RR{aRecord(q.Question[0].Name, netip.MustParseAddr("6.6.6.6"), 60)}
		wrongName := new(dns.Msg).SetReply(q)
		wrongName.Question[0].Name = "other.example."
		wrongName.Answer = []dns.RR{aRecord("other.example.", netip.MustParseAddr("6.6.6.6"), 60)}
		good := new(dns.Msg).SetReply(q)
		good.Answer = []dns.RR{aRecord(q.Question[0].Name, netip.MustParseAddr("93.184.216.34"), 60)}
		return []*dns.Msg{wrongID, wrongName, good}
	}})
	f, r := testForwarder(fn, 2*time.Second, "192.0.2.1:53")
	defer closePool(r)
	m, _ := forward(f, r, "www.example.com.")
	if len(m.Answer) != 1 || rdata(m.Answer[0]) != "93.184.216.34" {
		t.Fatalf("took a spoofed answer: %v", m.Answer)
	}
}

func TestForwardServfailTriesNext(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{answer: answerWith(func(q *dns.Msg) *dns.Msg {
		return new(dns.Msg).SetRcode(q, dns.RcodeServerFailure)
	})})
	fn.add("192.0.2.2:53", &fakeServer{answer: aAnswer("93.184.216.34", 300)})
	f, r := testForwarder(fn, 2*time.Second, "192.0.2.1:53", "192.0.2.2:53")
	defer closePool(r)
	if m, _ := forward(f, r, "www.example.com."); len(m.Answer) != 1 {
		t.Fatalf("SERVFAIL from the first upstream: %v", m)
	}
	if !r.pool.upstreams[0].healthy() {
		t.Fatal("an upstream that answers SERVFAIL is alive, not down")
	}
}

func TestForwardOverload(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{answer: aAnswer("93.184.216.34", 300)})
	f, r := testForwarder(fn, 2*time.Second, "192.0.2.1:53")
	defer closePool(r)
	f.slots = make(chan struct{}, 1)
	f.slots <- struct{}{} // one query in flight already
	m, req := forward(f, r, "www.example.com.")
	if m.Rcode != dns.RcodeServerFailure || req.by != byOverload {
		t.Fatalf("over MaxFlight: %v by %s", m, req.by)
	}
}

func TestForwardDeadline(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{})
	fn.add("192.0.2.2:53", &fakeServer{})
	f, r := testForwarder(fn, 100*time.Millisecond, "192.0.2.1:53", "192.0.2.2:53")
	defer closePool(r)
	if m, _ := forward(f, r, "www.example.com."); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("past the deadline: %v", m)
	}
}

func TestUpstreamQuery(t *testing.T) {
	req := testRequest("WwW.Example.com.", dns.TypeA, withEDNS(4096, true), func(m *dns.Msg) {
		m.CheckingDisabled = true
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: testClient.AsSlice()})
	})
	q := upstreamQuery(req)
	opt := q.IsEdns0()
	if !q.RecursionDesired || !q.CheckingDisabled || !q.AuthenticatedData || opt == nil || !opt.Do() || opt.UDPSize() != udpSize {
		t.Fatalf("upstream query flags: %v", q)
	}
	if len(opt.Option) != 0 {
		t.Fatalf("client EDNS options leak upstream: %v", opt.Option)
	}
	if q.Question[0].Name != "WwW.Example.com." {
		t.Fatalf("question %q: the client's spelling must go upstream (0x20)", q.Question[0].Name)
	}
}

// TestRespondSilentTimeout: a query whose deadline passes with every
// upstream silent gets no reply over UDP (the client asks again) and
// SERVFAIL over TCP; one the upstreams refuse is SERVFAIL either way.
func TestRespondSilentTimeout(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.168.1.254:53", &fakeServer{}) // drops everything
	fn.add("192.168.1.253:53", &fakeServer{refused: true})
	s := testServer(t, fn, func(c *Config) {
		c.Timeout = 200 * time.Millisecond
		c.Forward = append(c.Forward, Forward{Domain: "refused.example.", Servers: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.253:53")}})
	})
	if m := respondTo(s, lanClient, newQuery("silent.example.com.", dns.TypeA)); m != nil {
		t.Fatalf("UDP, every upstream silent: %v", m)
	}
	if m := respondTo(s, lanTCP, newQuery("silent2.example.com.", dns.TypeA)); m == nil || m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("TCP, every upstream silent: %v", m)
	}
	if m := respondTo(s, lanClient, newQuery("www.refused.example.", dns.TypeA)); m == nil || m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("UDP, the upstream refusing: %v", m)
	}
	st := s.Status()
	if st.ByStage["dropped"] != 1 || st.Forward.Timeouts != 2 {
		t.Fatalf("dropped %d (want 1), timeouts %d (want 2)", st.ByStage["dropped"], st.Forward.Timeouts)
	}
}
