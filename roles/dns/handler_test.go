package dns

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testServer is a Server with the pipeline for the site config (edited by
// edits) and no listeners; its upstreams are on fn.
func testServer(t testing.TB, fn *fakeNet, edits ...func(*Config)) *Server {
	t.Helper()
	return testServerAt(t, fn, time.Now, edits...)
}

// testServerAt is testServer with the pipeline's clock.
func testServerAt(t testing.TB, fn *fakeNet, now func() time.Time, edits ...func(*Config)) *Server {
	t.Helper()
	s := New(Options{Logger: discard})
	var ups []*upstream
	p := build(siteConfig(edits...), parts{
		leases: s.leases, cache: newCacheStore(1000), flight: s.flight, counters: &s.counters, now: now, qlog: s.qlog,
		upstreams: func(a netip.AddrPort) *upstream {
			u := newUpstream(a, fn, nil, discard)
			ups = append(ups, u)
			return u
		},
	})
	s.pipe.Store(p)
	t.Cleanup(func() {
		for _, u := range ups {
			u.close()
		}
	})
	return s
}

var (
	lanClient   = &net.UDPAddr{IP: net.IPv4(192, 168, 1, 50), Port: 40000}
	lanTCP      = &net.TCPAddr{IP: net.IPv4(192, 168, 1, 50), Port: 40000}
	otherClient = &net.UDPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 40000}
)

// upstreamSite is the fake upstream at the site's 192.168.1.254: A records
// for anything, 60 of them for big.example.com, AD set.
func upstreamSite() *fakeNet {
	fn := newFakeNet()
	fn.add("192.168.1.254:53", &fakeServer{answer: answerWith(func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		m.RecursionAvailable, m.AuthenticatedData = true, true
		name := q.Question[0].Name
		n := 1
		if name == "big.example.com." {
			n = 60
		}
		for i := range n {
			m.Answer = append(m.Answer, aRecord(name, netip.AddrFrom4([4]byte{93, 184, 216, byte(i)}), 300))
		}
		return m
	})})
	return fn
}

func TestRespondFlags(t *testing.T) {
	s := testServer(t, upstreamSite())
	tests := []struct {
		name    string
		from    net.Addr
		q       *dns.Msg
		rcode   int
		ra, ad  bool
		opt     bool // an OPT record in the reply
		do      bool
		tc      bool
		answers int
	}{
		{"served", lanClient, newQuery("www.example.com.", dns.TypeA), dns.RcodeSuccess, true, false, false, false, false, 1},
		{"refused", otherClient, newQuery("www.example.com.", dns.TypeA), dns.RcodeRefused, false, false, false, false, false, 0},
		{"edns echoed", lanClient, newQuery("www.example.com.", dns.TypeA, withEDNS(4096, false)), dns.RcodeSuccess, true, false, true, false, false, 1},
		{"do keeps ad", lanClient, newQuery("www.example.com.", dns.TypeA, withEDNS(4096, true)), dns.RcodeSuccess, true, true, true, true, false, 1},
		{"ad asked", lanClient, newQuery("www.example.com.", dns.TypeA, func(m *dns.Msg) { m.AuthenticatedData = true }), dns.RcodeSuccess, true, true, false, false, false, 1},
		{"truncated at 512", lanClient, newQuery("big.example.com.", dns.TypeA), dns.RcodeSuccess, true, false, false, false, true, 0},
		{"fits 1232", lanClient, newQuery("big.example.com.", dns.TypeA, withEDNS(1232, false)), dns.RcodeSuccess, true, false, true, false, false, 60},
		{"tcp whole", lanTCP, newQuery("big.example.com.", dns.TypeA), dns.RcodeSuccess, true, false, false, false, false, 60},
		{"badvers", lanClient, newQuery("x.example.", dns.TypeA, withEDNS(1232, false), func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers, true, false, true, false, false, 0},
		{"two opts", lanClient, newQuery("x.example.", dns.TypeA, withEDNS(1232, false), func(m *dns.Msg) { m.Extra = append(m.Extra, m.Extra[0]) }), dns.RcodeFormatError, true, false, false, false, false, 0},
		{"axfr", lanClient, newQuery("home.arpa.", dns.TypeAXFR), dns.RcodeRefused, true, false, false, false, false, 0},
		{"axfr outside", otherClient, newQuery("home.arpa.", dns.TypeAXFR), dns.RcodeRefused, false, false, false, false, false, 0},
		{"chaos", lanClient, newQuery("version.bind.", dns.TypeTXT, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused, true, false, false, false, false, 0},
	}
	for _, tt := range tests {
		m := respondTo(s, tt.from, tt.q)
		if m == nil {
			t.Errorf("%s: no reply", tt.name)
			continue
		}
		wire, err := m.Pack()
		if err != nil {
			t.Errorf("%s: reply does not pack: %v", tt.name, err)
			continue
		}
		got := new(dns.Msg)
		must(t, got.Unpack(wire))
		opt := got.IsEdns0()
		switch {
		case got.Rcode != tt.rcode:
			t.Errorf("%s: rcode %s, want %s", tt.name, dns.RcodeToString[got.Rcode], dns.RcodeToString[tt.rcode])
		case got.Id != tt.q.Id || !got.Response:
			t.Errorf("%s: id %d response %v", tt.name, got.Id, got.Response)
		case got.RecursionAvailable != tt.ra:
			t.Errorf("%s: RA %v, want %v", tt.name, got.RecursionAvailable, tt.ra)
		case got.AuthenticatedData != tt.ad:
			t.Errorf("%s: AD %v, want %v", tt.name, got.AuthenticatedData, tt.ad)
		case (opt != nil) != tt.opt:
			t.Errorf("%s: OPT %v, want %v", tt.name, opt, tt.opt)
		case opt != nil && (opt.Do() != tt.do || opt.UDPSize() != udpSize || opt.Version() != 0):
			t.Errorf("%s: OPT %v", tt.name, opt)
		case got.Truncated != tt.tc:
			t.Errorf("%s: TC %v, want %v", tt.name, got.Truncated, tt.tc)
		case tt.answers >= 0 && len(got.Answer) != tt.answers:
			t.Errorf("%s: %d answers, want %d", tt.name, len(got.Answer), tt.answers)
		}
		if _, tcp := tt.from.(*net.TCPAddr); !tcp {
			limit := 512
			if o := tt.q.IsEdns0(); o != nil {
				limit = clampSize(int(o.UDPSize()))
			}
			if len(wire) > limit {
				t.Errorf("%s: %d bytes over UDP, client takes %d", tt.name, len(wire), limit)
			}
		}
	}
}

func TestRespondRecoversPanics(t *testing.T) {
	s := New(Options{Logger: discard})
	s.pipe.Store(&pipeline{cfg: &Config{}, first: stageFunc(func(ctx context.Context, req *request) *dns.Msg {
		var m map[string]int
		m["boom"]++ // a nil map write
		return nil
	})})
	m := respondTo(s, lanClient, newQuery("x.example.", dns.TypeA))
	if m == nil || m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("a panicking stage: %v", m)
	}
	if s.Status().Panics != 1 {
		t.Fatalf("panics counted: %d", s.Status().Panics)
	}
}

// TestRespondPanicAfterParking: a stage panics after the forwarder below it
// parked the query. The client gets the SERVFAIL now; the parked query keeps
// its pipeline, so the loop can still settle it (and sends it nothing).
func TestRespondPanicAfterParking(t *testing.T) {
	s := New(Options{Logger: discard})
	defer s.Close()
	var parkedReq *request
	p := &pipeline{cfg: &Config{}, first: stageFunc(func(ctx context.Context, req *request) *dns.Msg {
		req.parked = &parked{req: req}
		parkedReq = req
		panic("boom")
	})}
	s.pipe.Store(p)
	m, _, slow, pk := s.respondOn(&loop{s: s}, netip.MustParseAddr("192.168.1.50"), false, newQuery("x.example.", dns.TypeA), true)
	if m == nil || m.Rcode != dns.RcodeServerFailure || slow || pk != nil {
		t.Fatalf("a panic after parking: %v, slow %v, parked %v", m, slow, pk)
	}
	if parkedReq.parked.pipe != p {
		t.Fatal("the parked query lost its pipeline: the loop could not settle it")
	}
	if parkedReq.parked.salen != 0 {
		t.Fatal("the parked query has a client address: it would get a second reply")
	}
}

func TestRespondCountsStages(t *testing.T) {
	s := testServer(t, upstreamSite())
	queries := []struct {
		from net.Addr
		name string
	}{
		{lanClient, "nas.home.arpa."},
		{lanClient, "x.local."},
		{lanClient, "www.example.com."},
		{lanClient, "www.example.com."},
		{otherClient, "www.example.com."},
	}
	for _, q := range queries {
		respondTo(s, q.from, newQuery(q.name, dns.TypeA))
	}
	st := s.Status()
	want := map[string]uint64{"local": 1, "special": 1, "forward": 1, "cache": 1, "access": 1}
	for k, v := range want {
		if st.ByStage[k] != v {
			t.Errorf("by stage %s = %d, want %d (%v)", k, st.ByStage[k], v, st.ByStage)
		}
	}
	if st.ByRcode["REFUSED"] != 1 || st.ByRcode["NXDOMAIN"] != 1 || st.ByRcode["NOERROR"] != 3 {
		t.Errorf("by rcode: %v", st.ByRcode)
	}
	if st.Cache.Hits != 1 || st.Cache.Misses != 1 || st.Cache.Size != 1 {
		t.Errorf("cache: %+v", st.Cache)
	}
	if len(st.Upstreams) != 4 || !st.Upstreams[0].Healthy || st.Upstreams[0].Queries != 1 {
		t.Errorf("upstreams: %+v", st.Upstreams)
	}
}

func TestAcceptQuery(t *testing.T) {
	s := New(Options{Logger: discard})
	const qr, opUpdate = 1 << 15, 5 << 11
	tests := []struct {
		h    dns.Header
		want dns.MsgAcceptAction
	}{
		{dns.Header{Qdcount: 1}, dns.MsgAccept},
		{dns.Header{Qdcount: 1, Arcount: 1}, dns.MsgAccept},
		{dns.Header{Bits: qr, Qdcount: 1}, dns.MsgIgnore},
		{dns.Header{Bits: opUpdate, Qdcount: 1}, dns.MsgRejectNotImplemented},
		{dns.Header{Qdcount: 0}, dns.MsgReject},
		{dns.Header{Qdcount: 2}, dns.MsgReject},
		{dns.Header{Qdcount: 1, Ancount: 1}, dns.MsgReject},
		{dns.Header{Qdcount: 1, Arcount: 3}, dns.MsgReject},
	}
	for _, tt := range tests {
		if got := s.acceptQuery(tt.h); got != tt.want {
			t.Errorf("acceptQuery(%+v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

// respondTo answers q as the listeners do: inline first, and again on the
// slow path when the query must wait for an upstream.
func respondTo(s *Server, from net.Addr, q *dns.Msg) *dns.Msg {
	client, tcp := clientAddr(from)
	m, _, slow := s.respond(client, tcp, q, !tcp)
	if slow {
		m, _, _ = s.respond(client, tcp, q, false)
	}
	return m
}

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	dns.ResponseWriter // nil: only the methods below are called
	from               net.Addr
	msgs               []*dns.Msg
}

func (r *recorder) RemoteAddr() net.Addr        { return r.from }
func (r *recorder) WriteMsg(m *dns.Msg) error   { r.msgs = append(r.msgs, m); return nil }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) LocalAddr() net.Addr         { return lanTCP }

// TestErrorReplies: a query rejected for its header gets a reply with its
// question and, for a served client, RA; over UDP and TCP alike.
func TestErrorReplies(t *testing.T) {
	s := testServer(t, upstreamSite())
	tests := []struct {
		name  string
		q     *dns.Msg
		from  *net.UDPAddr
		rcode int
		ra    bool
		qname string
	}{
		{"two questions", newQuery("a.example.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), lanClient, dns.RcodeFormatError, true, "a.example."},
		{"an answer section", newQuery("a.example.", dns.TypeA, func(m *dns.Msg) { m.Answer = []dns.RR{aRecord("a.example.", testClient, 1)} }), lanClient, dns.RcodeFormatError, true, "a.example."},
		{"update", newQuery("home.arpa.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), lanClient, dns.RcodeNotImplemented, true, "home.arpa."},
		{"outside the zones", newQuery("a.example.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), otherClient, dns.RcodeFormatError, false, "a.example."},
	}
	for _, tt := range tests {
		raw, err := tt.q.Pack()
		must(t, err)
		client, _ := clientAddr(tt.from)
		out, _ := s.handleUDP(raw, client, new(wireQuery), nil, time.Now())
		got := new(dns.Msg)
		if err := got.Unpack(out); err != nil {
			t.Errorf("%s over UDP: %v", tt.name, err)
			continue
		}
		rec := &recorder{from: &net.TCPAddr{IP: tt.from.IP, Port: tt.from.Port}}
		handler{s}.ServeDNS(rec, tt.q)
		if len(rec.msgs) != 1 {
			t.Errorf("%s over TCP: %d replies", tt.name, len(rec.msgs))
			continue
		}
		for proto, m := range map[string]*dns.Msg{"udp": got, "tcp": rec.msgs[0]} {
			if m.Rcode != tt.rcode || m.Id != tt.q.Id || m.RecursionAvailable != tt.ra || len(m.Question) != 1 || m.Question[0].Name != tt.qname {
				t.Errorf("%s over %s: %v", tt.name, proto, m)
			}
		}
	}
}
