package dns

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkRespond measures the handler alone (parse and write excluded):
// a local name, a cache hit, and a refused client.
func BenchmarkRespond(b *testing.B) {
	s := testServer(b, upstreamSite())
	for _, bc := range []struct {
		name string
		q    *dns.Msg
	}{
		{"local", newQuery("nas.home.arpa.", dns.TypeA)},
		{"cache", newQuery("www.example.com.", dns.TypeA)},
		{"local-edns", newQuery("nas.home.arpa.", dns.TypeA, withEDNS(1232, false))},
	} {
		respondTo(s, lanClient, bc.q.Copy()) // warm the cache
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, m := respondTo(s, lanClient, bc.q)
				if _, err := m.Pack(); err != nil {
					b.Fatal(err)
				}
			}
		})
		// As the UDP loop runs it: parse the datagram, answer inline, in
		// wire format where a stage can.
		raw, err := bc.q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, readBuffer)
		client := lanClient.AddrPort().Addr()
		b.Run(bc.name+"-udp", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := new(dns.Msg)
				if err := m.Unpack(raw); err != nil {
					b.Fatal(err)
				}
				req, reply, _ := s.respond(client, false, m, true, raw, buf)
				if req.wire == nil {
					pack(reply, buf)
				}
			}
		})
	}
}
