package dns

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testForwarder is a forwarder over the fake network with one default route
// to addrs, in order.
func testForwarder(fn *fakeNet, timeout time.Duration, addrs ...string) (*forwarder, *route) {
	p := &pool{attempt: timeout / 2}
	for _, a := range addrs {
		p.upstreams = append(p.upstreams, newUpstream(netip.MustParseAddrPort(a), fn, discard))
	}
	return &forwarder{slots: make(chan struct{}, 16), timeout: timeout}, &route{domain: ".", pool: p}
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
	if n := fn.dialCount("udp 192.0.2.1:53"); n != 1 {
		t.Fatalf("the down upstream got %d queries, want 1 (then skipped)", n)
	}
}

func TestForwardTimeoutFailover(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{}) // drops everything
	fn.add("192.0.2.2:53", &fakeServer{answer: aAnswer("93.184.216.34", 300)})
	f, r := testForwarder(fn, 200*time.Millisecond, "192.0.2.1:53", "192.0.2.2:53")
	defer closePool(r)
	for i := range maxFails {
		if m, _ := forward(f, r, "www.example.com."); len(m.Answer) != 1 {
			t.Fatalf("query %d with a silent first upstream: %v", i, m)
		}
	}
	if r.pool.upstreams[0].healthy() {
		t.Fatalf("still healthy after %d timeouts", maxFails)
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
	// The probe brings one back once it answers.
	a.mu.Lock()
	a.refused, a.answer = false, aAnswer("93.184.216.34", 300)
	a.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for !r.pool.upstreams[0].healthy() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if m, _ := forward(f, r, "www.example.com."); len(m.Answer) != 1 {
		t.Fatalf("after the upstream came back: %v", m)
	}
}

func TestForwardAllDownIsFast(t *testing.T) {
	fn := newFakeNet()
	fn.add("192.0.2.1:53", &fakeServer{refused: true})
	f, r := testForwarder(fn, 2*time.Second, "192.0.2.1:53")
	defer closePool(r)
	forward(f, r, "www.example.com.")
	_, err := r.pool.exchange(context.Background(), upstreamQuery(testRequest("x.example.", dns.TypeA)))
	if err != errAllDown {
		t.Fatalf("exchange with every upstream down: %v, want errAllDown", err)
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
