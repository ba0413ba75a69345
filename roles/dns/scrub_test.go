package dns

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// rrs parses records in zone-file syntax.
func rrs(t *testing.T, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		must(t, err)
		out = append(out, rr)
	}
	return out
}

// kept lists a message's records as "section owner type".
func kept(m *dns.Msg) []string {
	var out []string
	for i, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			out = append(out, []string{"an", "ns", "ad"}[i]+" "+strings.ToLower(h.Name)+" "+dns.TypeToString[h.Rrtype])
		}
	}
	return out
}

func TestScrub(t *testing.T) {
	tests := []struct {
		name          string
		qname         string
		qtype         uint16
		route         string
		answer, ns, x []string
		want          []string
	}{
		{
			name: "answer kept", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 A 93.184.216.34", "WWW.Example.COM. 300 A 93.184.216.35"},
			want:   []string{"an www.example.com. A", "an www.example.com. A"},
		},
		{
			name: "unrelated names and types dropped", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 A 93.184.216.34", "victim.example.com. 300 A 6.6.6.6", "www.example.com. 300 AAAA 2001:db8::1", "www.example.com. 300 TXT x"},
			x:      []string{"victim.example.com. 300 A 6.6.6.6"},
			want:   []string{"an www.example.com. A"},
		},
		{
			name: "never the site's own names", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 CNAME nas.home.arpa.", "nas.home.arpa. 300 A 6.6.6.6"},
			ns:     []string{"home.arpa. 300 NS evil.example.net."},
			x:      []string{"nas.home.arpa. 300 A 6.6.6.6"},
			want:   []string{"an www.example.com. CNAME"},
		},
		{
			name: "cname chain", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{
				"www.example.com. 300 CNAME cdn.example.net.", "cdn.example.net. 300 CNAME edge.example.org.",
				"edge.example.org. 60 A 93.184.216.34", "other.example.net. 60 A 6.6.6.6",
				"edge.example.org. 60 RRSIG A 13 3 60 20300101000000 20200101000000 1 example.org. c2ln",
			},
			want: []string{"an www.example.com. CNAME", "an cdn.example.net. CNAME", "an edge.example.org. A", "an edge.example.org. RRSIG"},
		},
		{
			name: "dname", qname: "a.b.example.com.", qtype: dns.TypeA,
			answer: []string{"b.example.com. 300 DNAME b.example.net.", "a.b.example.com. 300 CNAME a.b.example.net.", "a.b.example.net. 300 A 93.184.216.34", "c.example.com. 300 DNAME evil.example."},
			want:   []string{"an b.example.com. DNAME", "an a.b.example.com. CNAME", "an a.b.example.net. A"},
		},
		{
			name: "negative answer", qname: "nx.example.com.", qtype: dns.TypeA,
			ns: []string{
				"example.com. 300 SOA ns.example.com. h.example.com. 1 2 3 4 300", "evil.example. 300 SOA ns.evil.example. h.evil.example. 1 2 3 4 300",
				"example.com. 300 NSEC a.example.com. A NS SOA", "evil.example. 300 NSEC a.evil.example. A", "nx.example.com.example.com. 300 NSEC zz.example.com. A",
			},
			want: []string{"ns example.com. SOA", "ns example.com. NSEC", "ns nx.example.com.example.com. NSEC"},
		},
		{
			name: "negative answer after a chain", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 CNAME gone.example.net."},
			ns:     []string{"example.net. 300 SOA ns.example.net. h.example.net. 1 2 3 4 300", "example.com. 300 SOA ns.example.com. h.example.com. 1 2 3 4 300"},
			want:   []string{"an www.example.com. CNAME", "ns example.net. SOA"},
		},
		{
			name: "authority and glue", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 A 93.184.216.34"},
			ns:     []string{"example.com. 300 NS ns1.example.com.", "evil.example. 300 NS ns1.example.com."},
			x:      []string{"ns1.example.com. 300 A 192.0.2.53", "ns2.example.com. 300 A 192.0.2.54", "ns1.example.com. 300 TXT glue"},
			want:   []string{"an www.example.com. A", "ns example.com. NS", "ad ns1.example.com. A"},
		},
		{
			name: "mx targets", qname: "example.com.", qtype: dns.TypeMX,
			answer: []string{"example.com. 300 MX 10 mail.example.net."},
			x:      []string{"mail.example.net. 300 A 192.0.2.25", "mail.example.net. 300 AAAA 2001:db8::25", "www.example.net. 300 A 192.0.2.80"},
			want:   []string{"an example.com. MX", "ad mail.example.net. A", "ad mail.example.net. AAAA"},
		},
		{
			name: "a conditional route below the site's domain", qname: "pc.sub.home.arpa.", qtype: dns.TypeA, route: "sub.home.arpa.",
			answer: []string{"pc.sub.home.arpa. 300 A 10.8.0.9", "nas.home.arpa. 300 A 6.6.6.6"},
			want:   []string{"an pc.sub.home.arpa. A"},
		},
		{
			name: "cname question", qname: "www.example.com.", qtype: dns.TypeCNAME,
			answer: []string{"www.example.com. 300 CNAME cdn.example.net.", "cdn.example.net. 300 A 93.184.216.34"},
			want:   []string{"an www.example.com. CNAME"},
		},
	}
	s := scrubber{local: "home.arpa."}
	for _, tt := range tests {
		m := new(dns.Msg)
		m.SetQuestion(tt.qname, tt.qtype)
		m.Answer, m.Ns, m.Extra = rrs(t, tt.answer...), rrs(t, tt.ns...), rrs(t, tt.x...)
		total := len(m.Answer) + len(m.Ns) + len(m.Extra)
		route := tt.route
		if route == "" {
			route = "."
		}
		n := s.scrub(m, route)
		if got := kept(m); !slices.Equal(got, tt.want) {
			t.Errorf("%s: kept\n%s\nwant\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
		if n != total-len(tt.want) {
			t.Errorf("%s: counted %d dropped, want %d", tt.name, n, total-len(tt.want))
		}
	}
}

func TestScrubTopBitTTL(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.Answer = rrs(t, "www.example.com. 300 A 93.184.216.34", "www.example.com. 300 A 93.184.216.35")
	m.Answer[0].Header().Ttl = 1<<31 + 1
	m.Answer[1].Header().Ttl = maxTTL
	scrubber{local: "home.arpa."}.scrub(m, ".")
	if a, b := m.Answer[0].Header().Ttl, m.Answer[1].Header().Ttl; a != 0 || b != maxTTL {
		t.Fatalf("TTLs %d and %d, want 0 and %d", a, b, maxTTL)
	}
}
