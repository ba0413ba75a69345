package dns

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzServe feeds raw bytes through what a listener does with a datagram:
// the header check, the parse, and the pipeline (with the local zone and a
// fake upstream). Nothing may panic (the handler's recover would hide it, so
// the panic counter is checked), and every reply must pack within the
// client's size over UDP. Whatever the UDP fast path answers, the general
// path must answer the same (but for the case of names compressed against
// the question).
func FuzzServe(f *testing.F) {
	seeds := []*dns.Msg{
		newQuery("nas.home.arpa.", dns.TypeA),
		newQuery("nas.", dns.TypeAAAA, withEDNS(1232, true)),
		newQuery("20.1.168.192.in-addr.arpa.", dns.TypePTR),
		newQuery("files.home.arpa.", dns.TypeA),
		newQuery("www.home.arpa.", dns.TypeA),
		newQuery("x.local.", dns.TypeA),
		newQuery("big.example.com.", dns.TypeA),
		newQuery("www.example.com.", dns.TypeA, withEDNS(1232, true), withCookie),
		newQuery("1.0.0.127.in-addr.arpa.", dns.TypePTR),
		newQuery("x.example.", dns.TypeA, withEDNS(512, false), func(m *dns.Msg) { m.IsEdns0().SetVersion(3) }),
	}
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	f.Add([]byte{0, 1, 2}, false)
	clk := &clock{t: time.Now()}
	s := testServerAt(f, upstreamSite(), clk.now)
	for _, name := range []string{"www.example.com.", "big.example.com."} {
		respondTo(s, lanClient, newQuery(name, dns.TypeA)) // cache hits for the fast path
	}
	client, _ := clientAddr(lanClient)
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		var from net.Addr = lanClient
		if tcp {
			from = lanTCP
		}
		var fast []byte
		if !tcp {
			var q wireQuery
			if parseWireQuery(raw, &q) {
				fast, _, _ = s.pipe.Load().answerWire(&q, client, make([]byte, 0, readBuffer), clk.now())
			}
		}
		m, ok := parseLikeListener(s, raw)
		if !ok {
			if fast != nil {
				t.Fatalf("the fast path answered %x, which the listener rejects", raw)
			}
			return
		}
		reply := respondTo(s, from, m)
		if n := s.counters.panics.Load(); n != 0 {
			t.Fatalf("the handler panicked on %x", raw)
		}
		if reply == nil {
			if fast != nil {
				t.Fatalf("the fast path answered %x, the general path not", raw)
			}
			return
		}
		wire, err := reply.Pack()
		if err != nil {
			t.Fatalf("reply to %x does not pack: %v\n%v", raw, err, reply)
		}
		if !tcp && len(wire) > udpSize {
			t.Fatalf("a %d-byte UDP reply", len(wire))
		}
		if fast != nil {
			got := new(dns.Msg)
			if err := got.Unpack(fast); err != nil {
				t.Fatalf("the fast reply to %x does not parse: %v", raw, err)
			}
			if !strings.EqualFold(got.String(), reply.String()) {
				t.Fatalf("the fast path's reply to %x:\n%v\nthe general path's:\n%v", raw, got, reply)
			}
		}
	})
}

// parseLikeListener does what dns.Server does before calling the handler.
func parseLikeListener(s *Server, raw []byte) (*dns.Msg, bool) {
	var h dns.Header
	if len(raw) < 12 {
		return nil, false
	}
	h.Id = uint16(raw[0])<<8 | uint16(raw[1])
	h.Bits = uint16(raw[2])<<8 | uint16(raw[3])
	h.Qdcount = uint16(raw[4])<<8 | uint16(raw[5])
	h.Ancount = uint16(raw[6])<<8 | uint16(raw[7])
	h.Nscount = uint16(raw[8])<<8 | uint16(raw[9])
	h.Arcount = uint16(raw[10])<<8 | uint16(raw[11])
	if s.acceptQuery(h) != dns.MsgAccept {
		return nil, false
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		return nil, false
	}
	return m, true
}
