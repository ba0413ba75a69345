package dns

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkRespond measures answering alone, without sockets: the general
// path (parse excluded, pack included), and a datagram as the UDP loop
// takes it (the fast path where it answers): a local name, a cache hit,
// and both with EDNS.
func BenchmarkRespond(b *testing.B) {
	s := testServer(b, upstreamSite())
	for _, bc := range []struct {
		name string
		q    *dns.Msg
	}{
		{"local", newQuery("nas.home.arpa.", dns.TypeA)},
		{"cache", newQuery("www.example.com.", dns.TypeA)},
		{"local-edns", newQuery("nas.home.arpa.", dns.TypeA, withEDNS(1232, false))},
		{"cache-edns", newQuery("www.example.com.", dns.TypeA, withEDNS(1232, false))},
	} {
		respondTo(s, lanClient, bc.q.Copy()) // warm the cache
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := respondTo(s, lanClient, bc.q)
				if _, err := m.Pack(); err != nil {
					b.Fatal(err)
				}
			}
		})
		raw, err := bc.q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, readBuffer)
		client := lanClient.AddrPort().Addr().Unmap()
		q := new(wireQuery)
		b.Run(bc.name+"-udp", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if out, _ := s.handleUDP(raw, client, q, buf, time.Now()); out == nil {
					b.Fatal("no reply")
				}
			}
		})
	}
}
