package dns

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServe feeds raw bytes through what a listener does with a datagram:
// the header check, the parse, and the pipeline (with the local zone and a
// fake upstream). Nothing may panic (the handler's recover would hide it, so
// the panic counter is checked), and every reply must pack within the
// client's size over UDP.
func FuzzServe(f *testing.F) {
	seeds := []*dns.Msg{
		newQuery("nas.home.arpa.", dns.TypeA),
		newQuery("nas.", dns.TypeAAAA, withEDNS(1232, true)),
		newQuery("20.1.168.192.in-addr.arpa.", dns.TypePTR),
		newQuery("files.home.arpa.", dns.TypeA),
		newQuery("www.home.arpa.", dns.TypeA),
		newQuery("x.local.", dns.TypeA),
		newQuery("big.example.com.", dns.TypeA),
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
	s := testServer(f, upstreamSite())
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		var from net.Addr = lanClient
		if tcp {
			from = lanTCP
		}
		m, ok := parseLikeListener(s, raw)
		if !ok {
			return
		}
		client, _ := clientAddr(from)
		req, reply, slow := s.respond(client, tcp, m, !tcp, raw, make([]byte, 0, readBuffer))
		if slow {
			req, reply, _ = s.respond(client, tcp, m, false, nil, nil)
		}
		if n := s.counters.panics.Load(); n != 0 {
			t.Fatalf("the handler panicked on %x", raw)
		}
		if req != nil && req.wire != nil {
			if err := new(dns.Msg).Unpack(req.wire); err != nil || len(req.wire) > req.size {
				t.Fatalf("wire reply to %x: %d bytes, %v", raw, len(req.wire), err)
			}
			return
		}
		if reply == nil {
			return
		}
		wire, err := reply.Pack()
		if err != nil {
			t.Fatalf("reply to %x does not pack: %v\n%v", raw, err, reply)
		}
		if !tcp && len(wire) > udpSize {
			t.Fatalf("a %d-byte UDP reply", len(wire))
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
