package dns

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestCacheWireMatchesGeneralPath answers cache hits both ways, the wire
// fast path and unpack-finish-pack, and requires the same reply.
func TestCacheWireMatchesGeneralPath(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	up := &scripted{answer: func(req *request) *dns.Msg {
		name := req.q.Name
		switch lowerName(name) {
		case "nx.example.com.":
			return negative(dns.RcodeNameError, 300, 300)(req)
		case "many.example.com.":
			m := req.reply(dns.RcodeSuccess)
			m.AuthenticatedData = true
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: header(name, dns.TypeCNAME, 600), Target: "target.example.net."})
			for i := range 70 {
				m.Answer = append(m.Answer, aRecord("target.example.net.", netipAddr4(93, 184, 1, byte(i)), 300))
			}
			return m
		}
		m := positive(300)(req)
		m.AuthenticatedData = true
		return m
	}}
	c := newTestCache(100, defaultPolicy, up, clk)
	s := New(Options{Logger: discard})
	for _, name := range []string{"www.example.com.", "nx.example.com.", "many.example.com."} {
		c.serve(context.Background(), testRequest(name, dns.TypeA))
	}
	clk.add(42 * time.Second) // TTLs age on both paths
	tests := []struct {
		name     string
		q        *dns.Msg
		wantWire bool
	}{
		{"plain", newQuery("www.example.com.", dns.TypeA), true},
		{"mixed case", newQuery("WwW.ExAmple.COM.", dns.TypeA), true},
		{"edns", newQuery("www.example.com.", dns.TypeA, withEDNS(4096, false)), true},
		{"edns do", newQuery("www.example.com.", dns.TypeA, withEDNS(1232, true)), true},
		{"ad asked", newQuery("www.example.com.", dns.TypeA, func(m *dns.Msg) { m.AuthenticatedData = true }), true},
		{"cd", newQuery("www.example.com.", dns.TypeA, func(m *dns.Msg) { m.CheckingDisabled = true }), true},
		{"no rd", newQuery("www.example.com.", dns.TypeA, func(m *dns.Msg) { m.RecursionDesired = false }), true},
		{"nxdomain", newQuery("nx.example.com.", dns.TypeA, withEDNS(1232, false)), true},
		{"too big for 512", newQuery("many.example.com.", dns.TypeA), false},
		{"fits 1232", newQuery("many.example.com.", dns.TypeA, withEDNS(1232, false)), true},
	}
	for _, tt := range tests {
		c.serve(context.Background(), newRequest(tt.q, testClient, false)) // the DO and CD keys are their own
		fast, ok := cacheWire(t, c, tt.q, clk.now())
		if ok != tt.wantWire {
			t.Errorf("%s: wire path taken %v, want %v", tt.name, ok, tt.wantWire)
			continue
		}
		if !tt.wantWire {
			continue
		}
		general := newRequest(tt.q, testClient, false)
		m := c.serve(context.Background(), general)
		s.finish(general, m)
		want, err := m.Pack()
		must(t, err)
		got := new(dns.Msg)
		must(t, got.Unpack(fast))
		wantMsg := new(dns.Msg)
		must(t, wantMsg.Unpack(want))
		// Owner names compressed against the question take the client's
		// spelling on the wire path: equal but for case.
		if !strings.EqualFold(got.String(), wantMsg.String()) {
			t.Errorf("%s: the wire path differs:\n%s\nwant\n%s", tt.name, got, wantMsg)
		}
	}
}

// cacheWire answers q from c's store in wire format, as the fast path does
// for a fresh entry.
func cacheWire(t testing.TB, c *cacheStage, q *dns.Msg, now time.Time) ([]byte, bool) {
	t.Helper()
	raw, err := q.Pack()
	must(t, err)
	var wq wireQuery
	if !parseWireQuery(raw, &wq) {
		t.Fatalf("the fast path declines %v", q)
	}
	e, fresh := c.store.get(cacheKey{name: wq.lowerName(), qtype: wq.qtype, qclass: wq.qclass, do: wq.do, cd: wq.cd}, now)
	if !fresh {
		t.Fatalf("no fresh entry for %v", q)
	}
	age := uint32((now.UnixNano() - e.stored) / int64(time.Second))
	return e.appendWire(make([]byte, 0, readBuffer), &wq, age)
}

func TestLayoutOf(t *testing.T) {
	m := newQuery("a.example.", dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{aRecord("a.example.", netip.MustParseAddr("192.0.2.1"), 77), aRecord("a.example.", netip.MustParseAddr("192.0.2.2"), 78)}
	m.Compress = true
	wire, err := m.Pack()
	must(t, err)
	l, ok := layoutOf(wire)
	if !ok || len(l.ttls) != 2 || l.qnameEnd != 12+len("\x01a\x07example\x00") {
		t.Fatalf("layout %+v ok %v", l, ok)
	}
	if ttl := uint32(wire[l.ttls[1]])<<24 | uint32(wire[l.ttls[1]+1])<<16 | uint32(wire[l.ttls[1]+2])<<8 | uint32(wire[l.ttls[1]+3]); ttl != 78 {
		t.Fatalf("second TTL read as %d", ttl)
	}
	for _, bad := range [][]byte{nil, wire[:len(wire)-1], append(append([]byte{}, wire...), 0)} {
		if _, ok := layoutOf(bad); ok {
			t.Errorf("layoutOf(%x) accepted", bad)
		}
	}
}
