package dns

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// siteStages builds special → local → next for the site's Config.
func siteStages(t testing.TB) (*special, *localZone, *nextStage, *leaseTable) {
	t.Helper()
	c := siteConfig()
	next := &nextStage{}
	leases := newLeaseTable()
	routes := buildRoutes(c, func(a netip.AddrPort) *upstream { return newUpstream(a, newFakeNet(), nil, discard) }, &forwardStats{})
	z := buildZone(c, leases, routes, next)
	s := &special{domain: c.Domain, ttl: c.TTL, routes: routes, answers: z.answersReverse, holds: z.holdsReverse, next: z}
	return s, z, next, leases
}

func TestSpecial(t *testing.T) {
	s, _, next, _ := siteStages(t)
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int    // -1: passed on to the next stages
		answer string // first answer's rdata, "" for none
		soa    string // authority SOA owner, "" for none
	}{
		{"localhost.", dns.TypeA, dns.RcodeSuccess, "127.0.0.1", ""},
		{"LocalHost.", dns.TypeAAAA, dns.RcodeSuccess, "::1", ""},
		{"foo.localhost.", dns.TypeA, dns.RcodeSuccess, "127.0.0.1", ""},
		{"localhost.", dns.TypeMX, dns.RcodeSuccess, "", "localhost."},
		{"printer.local.", dns.TypeA, dns.RcodeNameError, "", "local."},
		{"local.", dns.TypeSOA, dns.RcodeSuccess, "localhost.", ""},
		{"facebookcorewwwi.onion.", dns.TypeA, dns.RcodeNameError, "", "onion."},
		{"x.invalid.", dns.TypeA, dns.RcodeNameError, "", "invalid."},
		{"invalid.", dns.TypeA, dns.RcodeSuccess, "", "invalid."},
		{"a.test.", dns.TypeAAAA, dns.RcodeNameError, "", "test."},
		// RFC 6303: private reverse zones the site does not serve
		{"4.3.2.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", "10.in-addr.arpa."},
		{"1.5.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", "168.192.in-addr.arpa."},
		{"9.9.20.172.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", "20.172.in-addr.arpa."},
		{"1.0.0.127.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "localhost.", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", dns.TypePTR, dns.RcodeSuccess, "localhost.", ""},
		{reverseName(netip.MustParsePrefix("fe80::1/128")), dns.TypePTR, dns.RcodeNameError, "", "8.e.f.ip6.arpa."},
		// ancestors of the site's reverse zones exist: NODATA, not NXDOMAIN
		{"168.192.in-addr.arpa.", dns.TypeNS, dns.RcodeSuccess, "localhost.", ""},
		{"0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "", "10.in-addr.arpa."},
		// passed on: the site's subnets, a conditional forward, public names
		{"20.1.168.192.in-addr.arpa.", dns.TypePTR, -1, "", ""},
		{"5.5.16.172.in-addr.arpa.", dns.TypePTR, -1, "", ""},
		{"9.0.0.10.in-addr.arpa.", dns.TypePTR, -1, "", ""},
		{"8.8.8.8.in-addr.arpa.", dns.TypePTR, -1, "", ""},
		{"nas.home.arpa.", dns.TypeA, -1, "", ""},
		{"example.com.", dns.TypeA, -1, "", ""},
		{"x.corp.example.", dns.TypeA, -1, "", ""},
	}
	for _, tt := range tests {
		before := len(next.seen())
		req := testRequest(tt.name, tt.qtype)
		m := s.serve(context.Background(), req)
		passed := len(next.seen()) > before || req.by == byLocal
		if tt.rcode < 0 {
			if !passed {
				t.Errorf("%s %s: answered %s here, want it passed on", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[m.Rcode])
			}
			continue
		}
		if passed || req.by != bySpecial {
			t.Errorf("%s %s: passed on (by %s), want a local answer", tt.name, dns.TypeToString[tt.qtype], req.by)
			continue
		}
		checkAnswer(t, tt.name, m, tt.rcode, tt.answer, tt.soa)
	}
}

// checkAnswer compares m's rcode, first answer's rdata and authority SOA.
func checkAnswer(t *testing.T, what string, m *dns.Msg, rcode int, answer, soa string) {
	t.Helper()
	if m.Rcode != rcode {
		t.Errorf("%s: rcode %s, want %s", what, dns.RcodeToString[m.Rcode], dns.RcodeToString[rcode])
	}
	got := ""
	if len(m.Answer) > 0 {
		got = rdata(m.Answer[0])
	}
	if got != answer {
		t.Errorf("%s: answer %q, want %q (%v)", what, got, answer, m.Answer)
	}
	gotSOA := ""
	if s := findSOA(m.Ns); s != nil {
		gotSOA = s.Hdr.Name
	}
	if gotSOA != soa {
		t.Errorf("%s: authority SOA %q, want %q", what, gotSOA, soa)
	}
	if rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError {
		if !m.Authoritative && (answer != "" || soa != "") {
			t.Errorf("%s: AA clear on a local answer", what)
		}
	}
}

// rdata is an RR's data as text (no header).
func rdata(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.A:
		return rr.A.String()
	case *dns.AAAA:
		return rr.AAAA.String()
	case *dns.PTR:
		return rr.Ptr
	case *dns.CNAME:
		return rr.Target
	case *dns.NS:
		return rr.Ns
	case *dns.SOA:
		return rr.Ns
	case *dns.TXT:
		return rr.Txt[0]
	}
	return rr.String()
}
