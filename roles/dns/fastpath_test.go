package dns

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// withCookie adds a client cookie to the query's OPT record, as dig does.
func withCookie(m *dns.Msg) {
	o := m.IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
}

// fastAnswer runs q from client through the fast path as the UDP loop does.
func fastAnswer(t testing.TB, s *Server, q *dns.Msg, client netip.Addr, now time.Time) ([]byte, stageID, bool) {
	t.Helper()
	raw, err := q.Pack()
	must(t, err)
	var wq wireQuery
	if !parseWireQuery(raw, &wq) {
		return nil, 0, false
	}
	return s.pipe.Load().answerWire(&wq, client, make([]byte, 0, readBuffer), now)
}

// generalAnswer is the general path's reply to q, packed compressed as the
// fast path's replies are.
func generalAnswer(t testing.TB, s *Server, q *dns.Msg, client netip.Addr) []byte {
	t.Helper()
	m, _, slow := s.respond(client, false, q.Copy(), true)
	if slow || m == nil {
		t.Fatalf("the general path has no reply at once to %v", q)
	}
	m.Compress = true
	wire, err := m.Pack()
	must(t, err)
	return wire
}

// TestFastPathMatchesGeneralPath: every local name and cache hit the fast
// path answers gets the general path's reply, byte for byte (cache hits of
// a question spelled in mixed case: the same but for the case of the
// owner names that point at the question).
func TestFastPathMatchesGeneralPath(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	s := testServerAt(t, upstreamSite(), clk.now)
	s.PublishLease("laptop", netip.MustParseAddr("192.168.1.123"))
	cd := func(m *dns.Msg) { m.CheckingDisabled = true }
	noRD := func(m *dns.Msg) { m.RecursionDesired = false }
	ad := func(m *dns.Msg) { m.AuthenticatedData = true }
	for _, q := range []*dns.Msg{
		newQuery("www.example.com.", dns.TypeA),
		newQuery("www.example.com.", dns.TypeA, withEDNS(1232, true)),
		newQuery("www.example.com.", dns.TypeA, cd),
		newQuery("big.example.com.", dns.TypeA, withEDNS(1232, false)),
	} {
		respondTo(s, lanClient, q) // the cache's entries, one per DO and CD
	}
	clk.add(42 * time.Second) // TTLs age on both paths
	client := lanClient.AddrPort().Addr().Unmap()
	tests := []struct {
		name  string
		q     *dns.Msg
		by    stageID
		exact bool
	}{
		{"local a", newQuery("nas.home.arpa.", dns.TypeA), byLocal, true},
		{"local aaaa mixed case", newQuery("NAS.Home.Arpa.", dns.TypeAAAA), byLocal, true},
		{"local any do", newQuery("nas.home.arpa.", dns.TypeANY, withEDNS(1232, true)), byLocal, true},
		{"local cd no rd", newQuery("router.home.arpa.", dns.TypeA, cd, noRD), byLocal, true},
		{"local cookie", newQuery("nas.home.arpa.", dns.TypeA, withEDNS(4096, false), withCookie), byLocal, true},
		{"bare", newQuery("Nas.", dns.TypeA, withEDNS(4096, false)), byLocal, true},
		{"lease", newQuery("laptop.home.arpa.", dns.TypeA), byLocal, true},
		{"bare lease", newQuery("laptop.", dns.TypeA), byLocal, true},
		{"deep", newQuery("deep.sub2.home.arpa.", dns.TypeA), byLocal, true},
		{"hit", newQuery("www.example.com.", dns.TypeA), byCache, true},
		{"hit mixed case", newQuery("WwW.ExAmple.COM.", dns.TypeA), byCache, false},
		{"hit edns", newQuery("www.example.com.", dns.TypeA, withEDNS(4096, false)), byCache, true},
		{"hit do", newQuery("www.example.com.", dns.TypeA, withEDNS(1232, true)), byCache, true},
		{"hit ad asked", newQuery("www.example.com.", dns.TypeA, ad), byCache, true},
		{"hit cd", newQuery("www.example.com.", dns.TypeA, cd), byCache, true},
		{"hit no rd", newQuery("www.example.com.", dns.TypeA, noRD), byCache, true},
		{"hit cookie", newQuery("www.example.com.", dns.TypeA, withEDNS(1232, false), withCookie), byCache, true},
		{"hit fits 1232", newQuery("big.example.com.", dns.TypeA, withEDNS(1232, false)), byCache, true},
	}
	for _, tt := range tests {
		for id := range uint16(3) { // rotations
			tt.q.Id = id
			fast, by, ok := fastAnswer(t, s, tt.q, client, clk.now())
			if !ok || by != tt.by {
				t.Errorf("%s: fast path %v by %v, want it to answer by %v", tt.name, ok, by, tt.by)
				break
			}
			want := generalAnswer(t, s, tt.q, client)
			if tt.exact && string(fast) == string(want) {
				continue
			}
			got, wantMsg := new(dns.Msg), new(dns.Msg)
			must(t, got.Unpack(fast))
			must(t, wantMsg.Unpack(want))
			if tt.exact || !strings.EqualFold(got.String(), wantMsg.String()) {
				t.Errorf("%s, ID %d: the fast path differs:\n%x\n%s\nwant\n%x\n%s", tt.name, id, fast, got, want, wantMsg)
			}
		}
	}
}

// TestFastPathDeclines: what the fast path leaves to the general path.
func TestFastPathDeclines(t *testing.T) {
	s := testServer(t, upstreamSite())
	respondTo(s, lanClient, newQuery("big.example.com.", dns.TypeA))
	client := lanClient.AddrPort().Addr().Unmap()
	tests := []struct {
		name string
		q    *dns.Msg
		from netip.Addr
	}{
		{"nodata", newQuery("nas.home.arpa.", dns.TypeMX), client},
		{"aaaa of a v4 name", newQuery("router.home.arpa.", dns.TypeAAAA), client},
		{"cname", newQuery("files.home.arpa.", dns.TypeA), client},
		{"nxdomain", newQuery("nothere.home.arpa.", dns.TypeA), client},
		{"apex", newQuery("home.arpa.", dns.TypeSOA), client},
		{"empty non-terminal", newQuery("sub2.home.arpa.", dns.TypeA), client},
		{"delegated below the domain", newQuery("x.sub.home.arpa.", dns.TypeA), client},
		{"bare nxdomain", newQuery("nope.", dns.TypeA), client},
		{"special", newQuery("x.local.", dns.TypeA), client},
		{"localhost", newQuery("localhost.", dns.TypeA), client},
		{"reverse", newQuery("20.1.168.192.in-addr.arpa.", dns.TypePTR), client},
		{"refused client", newQuery("nas.home.arpa.", dns.TypeA), otherClient.AddrPort().Addr().Unmap()},
		{"miss", newQuery("uncached.example.com.", dns.TypeA), client},
		{"conditional miss", newQuery("x.corp.example.", dns.TypeA), client},
		{"too big for 512", newQuery("big.example.com.", dns.TypeA), client},
		{"edns version 1", newQuery("nas.home.arpa.", dns.TypeA, withEDNS(1232, false), func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }), client},
		{"nsid option", newQuery("nas.home.arpa.", dns.TypeA, withEDNS(1232, false), func(m *dns.Msg) {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		}), client},
		{"two questions", newQuery("nas.home.arpa.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), client},
		{"axfr", newQuery("home.arpa.", dns.TypeAXFR), client},
		{"chaos", newQuery("nas.home.arpa.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), client},
		{"response", newQuery("nas.home.arpa.", dns.TypeA, func(m *dns.Msg) { m.Response = true }), client},
		{"update", newQuery("nas.home.arpa.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), client},
		{"escaped dot", newQuery(`a\.b.example.com.`, dns.TypeA), client},
		{"root", newQuery(".", dns.TypeNS), client},
	}
	for _, tt := range tests {
		if _, by, ok := fastAnswer(t, s, tt.q, tt.from, time.Now()); ok {
			t.Errorf("%s: the fast path answered (by %v)", tt.name, by)
		}
	}
	// A compression pointer in the question, and a byte after the
	// question: both the general path's to judge.
	raw, err := newQuery("nas.home.arpa.", dns.TypeA).Pack()
	must(t, err)
	var q wireQuery
	for _, bad := range [][]byte{
		append(append([]byte{}, raw[:12]...), 0xC0, 12, 0, 1, 0, 1),
		append(append([]byte{}, raw...), 0),
		raw[:len(raw)-1],
	} {
		if parseWireQuery(bad, &q) {
			t.Errorf("parseWireQuery(%x) accepted", bad)
		}
	}
}

// TestFastPathAllocs: answering a local name or a cache hit from a
// datagram allocates nothing, and is counted like any answer.
func TestFastPathAllocs(t *testing.T) {
	s := testServer(t, upstreamSite())
	s.PublishLease("laptop", netip.MustParseAddr("192.168.1.123"))
	respondTo(s, lanClient, newQuery("www.example.com.", dns.TypeA))
	respondTo(s, lanClient, newQuery("www.example.com.", dns.TypeA, withEDNS(1232, true)))
	client := lanClient.AddrPort().Addr().Unmap()
	buf := make([]byte, 0, readBuffer)
	q := new(wireQuery)
	for _, tt := range []struct {
		name  string
		q     *dns.Msg
		stage string
	}{
		{"local", newQuery("nas.home.arpa.", dns.TypeA), "local"},
		{"local edns", newQuery("NAS.home.arpa.", dns.TypeAAAA, withEDNS(1232, false)), "local"},
		{"bare", newQuery("nas.", dns.TypeA), "local"},
		{"lease", newQuery("laptop.home.arpa.", dns.TypeA), "local"},
		{"cache hit", newQuery("www.example.com.", dns.TypeA), "cache"},
		{"cache hit do", newQuery("WWW.example.com.", dns.TypeA, withEDNS(1232, true), withCookie), "cache"},
	} {
		raw, err := tt.q.Pack()
		must(t, err)
		before := s.Status().ByStage[tt.stage]
		allocs := testing.AllocsPerRun(1000, func() {
			if out, _ := s.handleUDP(raw, client, q, buf, time.Now()); out == nil {
				t.Fatal("no reply")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per query", tt.name, allocs)
		}
		if n := s.Status().ByStage[tt.stage] - before; n != 1001 {
			t.Errorf("%s: %d queries counted by %s, want 1001", tt.name, n, tt.stage)
		}
	}
}

// TestNeverForwarded: the fast path leaves every name the special stage
// answers, and every reverse name, to the general path.
func TestNeverForwarded(t *testing.T) {
	for _, d := range append([]string{"localhost.", "in-addr.arpa.", "ip6.arpa."}, specialDomains...) {
		for _, name := range []string{d, "x.y." + d} {
			if !neverForwarded(name) {
				t.Errorf("neverForwarded(%s) = false", name)
			}
		}
	}
	for _, name := range []string{"www.example.com.", "local.example.", "nas.", "arpa.example."} {
		if neverForwarded(name) {
			t.Errorf("neverForwarded(%s) = true", name)
		}
	}
}

func TestParseWireQuery(t *testing.T) {
	pad := func(m *dns.Msg) {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 7)})
	}
	raw, err := newQuery("Nas.Home.ARPA.", dns.TypeAAAA, withEDNS(9000, true), withCookie, pad, func(m *dns.Msg) {
		m.Id, m.CheckingDisabled, m.AuthenticatedData, m.RecursionDesired = 4711, true, true, false
	}).Pack()
	must(t, err)
	var q wireQuery
	if !parseWireQuery(raw, &q) {
		t.Fatal("declined")
	}
	if q.lowerName() != "nas.home.arpa." || q.id != 4711 || q.qtype != dns.TypeAAAA || q.qclass != dns.ClassINET ||
		!q.edns || !q.do || q.size != udpSize || !q.cd || !q.ad || q.rd || q.nameEnd != 12+len("\x03Nas\x04Home\x04ARPA\x00") {
		t.Fatalf("parsed %+v", q)
	}
	raw, err = newQuery("nas.home.arpa.", dns.TypeA, withEDNS(100, false)).Pack()
	must(t, err)
	if !parseWireQuery(raw, &q) || q.size != dns.MinMsgSize || q.do {
		t.Fatalf("small EDNS buffer: size %d", q.size)
	}
}
