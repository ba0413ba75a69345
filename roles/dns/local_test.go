package dns

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestLocalZone(t *testing.T) {
	_, z, next, leases := siteStages(t)
	leases.publish("laptop", netip.MustParseAddr("192.168.1.100"))
	leases.publish("nas", netip.MustParseAddr("192.168.1.101"))     // a static name wins
	leases.publish("phone", netip.MustParseAddr("10.0.0.150"))      // another served subnet
	leases.publish("printer", netip.MustParseAddr("192.168.1.102")) // a DHCP static name wins too
	tests := []struct {
		name    string
		qtype   uint16
		rcode   int // -1: passed on
		answer  string
		soa     string
		answers int // how many answer records (0: don't check)
	}{
		{"nas.home.arpa.", dns.TypeA, dns.RcodeSuccess, "192.168.1.20", "", 1},
		{"NAS.Home.Arpa.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::20", "", 1},
		{"nas.home.arpa.", dns.TypeANY, dns.RcodeSuccess, "192.168.1.20", "", 2},
		{"nas.home.arpa.", dns.TypeMX, dns.RcodeSuccess, "", "home.arpa.", 0},
		{"printer.home.arpa.", dns.TypeA, dns.RcodeSuccess, "192.168.1.10", "", 1},
		{"router.home.arpa.", dns.TypeA, dns.RcodeSuccess, "192.168.1.1", "", 1},
		{"dns.home.arpa.", dns.TypeA, dns.RcodeSuccess, "192.168.1.3", "", 1},
		{"lab.home.arpa.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "", 1},
		{"laptop.home.arpa.", dns.TypeA, dns.RcodeSuccess, "192.168.1.100", "", 1},
		{"phone.home.arpa.", dns.TypeA, dns.RcodeSuccess, "10.0.0.150", "", 1},
		{"deep.sub2.home.arpa.", dns.TypeA, dns.RcodeSuccess, "192.168.1.21", "", 1},
		{"sub2.home.arpa.", dns.TypeA, dns.RcodeSuccess, "", "home.arpa.", 0}, // empty non-terminal
		{"nothere.home.arpa.", dns.TypeA, dns.RcodeNameError, "", "home.arpa.", 0},
		{"home.arpa.", dns.TypeSOA, dns.RcodeSuccess, "dns.home.arpa.", "", 1},
		{"home.arpa.", dns.TypeNS, dns.RcodeSuccess, "dns.home.arpa.", "", 1},
		{"home.arpa.", dns.TypeA, dns.RcodeSuccess, "", "home.arpa.", 0},
		{"files.home.arpa.", dns.TypeA, dns.RcodeSuccess, "nas.home.arpa.", "", 2},
		{"files.home.arpa.", dns.TypeCNAME, dns.RcodeSuccess, "nas.home.arpa.", "", 1},
		{"dangling.home.arpa.", dns.TypeA, dns.RcodeNameError, "nothere.home.arpa.", "home.arpa.", 1},
		{"loop1.home.arpa.", dns.TypeA, dns.RcodeServerFailure, "loop2.home.arpa.", "", 0},
		{"www.home.arpa.", dns.TypeA, dns.RcodeSuccess, "www.example.com.", "", 2}, // target from the next stages
		// bare names
		{"nas.", dns.TypeA, dns.RcodeSuccess, "192.168.1.20", "", 1},
		{"laptop.", dns.TypeA, dns.RcodeSuccess, "192.168.1.100", "", 1},
		{"nothere.", dns.TypeA, dns.RcodeNameError, "", ".", 0},
		{"nas.", dns.TypeMX, dns.RcodeSuccess, "", ".", 0},
		{"files.", dns.TypeA, dns.RcodeSuccess, "nas.home.arpa.", "", 2},
		{"Files.", dns.TypeCNAME, dns.RcodeSuccess, "nas.home.arpa.", "", 1},
		{"dangling.", dns.TypeA, dns.RcodeNameError, "nothere.home.arpa.", "home.arpa.", 1},
		{"com.", dns.TypeNS, -1, "", "", 0},
		// reverse
		{"20.1.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "nas.home.arpa.", "", 1},
		{"10.1.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "printer.home.arpa.", "", 1},
		{"3.1.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "dns.home.arpa.", "", 1},
		{"100.1.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "laptop.home.arpa.", "", 1},
		{"150.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "phone.home.arpa.", "", 1},
		{"101.1.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", "1.168.192.in-addr.arpa.", 0}, // "nas" lease hidden
		{"99.1.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", "1.168.192.in-addr.arpa.", 0},
		{"1.168.192.in-addr.arpa.", dns.TypeSOA, dns.RcodeSuccess, "dns.home.arpa.", "", 1},
		{"1.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "", "1.168.192.in-addr.arpa.", 0},
		{reverseName(netip.MustParsePrefix("fd00::20/128")), dns.TypePTR, dns.RcodeSuccess, "nas.home.arpa.", "", 1},
		// passed on: a forward below our domain, public names, the forward's reverse zone
		{"x.sub.home.arpa.", dns.TypeA, -1, "", "", 0},
		{"example.com.", dns.TypeA, -1, "", "", 0},
		{"5.5.16.172.in-addr.arpa.", dns.TypePTR, -1, "", "", 0},
	}
	for _, tt := range tests {
		what := tt.name + " " + dns.TypeToString[tt.qtype]
		before := len(next.seen())
		req := testRequest(tt.name, tt.qtype)
		m := z.serve(context.Background(), req)
		if tt.rcode < 0 {
			if !fromNext(m) {
				t.Errorf("%s: answered here, want it passed on: %v", what, m)
			}
			continue
		}
		if req.by != byLocal {
			t.Errorf("%s: answered by %s, want local", what, req.by)
		}
		checkAnswer(t, what, m, tt.rcode, tt.answer, tt.soa)
		if tt.answers > 0 && len(m.Answer) != tt.answers {
			t.Errorf("%s: %d answers, want %d: %v", what, len(m.Answer), tt.answers, m.Answer)
		}
		if len(next.seen()) > before && tt.name != "www.home.arpa." {
			t.Errorf("%s: reached the next stage", what)
		}
	}
}

func TestLocalOwnerIsQuestion(t *testing.T) {
	_, z, _, _ := siteStages(t)
	m := z.serve(context.Background(), testRequest("Nas.", dns.TypeA))
	if len(m.Answer) != 1 || m.Answer[0].Header().Name != "Nas." {
		t.Fatalf("bare name answer owner: %v", m.Answer)
	}
}

func TestLeaseTable(t *testing.T) {
	lt := newLeaseTable()
	a1, a2 := netip.MustParseAddr("192.168.1.100"), netip.MustParseAddr("192.168.1.101")
	lt.publish("pc", a1)
	lt.publish("pc", a1)
	lt.publish("pc", a2)
	if got := lt.addrs("pc"); len(got) != 2 {
		t.Fatalf("two leases under one name: %v", got)
	}
	lt.publish("renamed", a1) // the client at a1 took another name
	if got := lt.addrs("pc"); len(got) != 1 || got[0] != a2 {
		t.Fatalf("after the rename: pc = %v", got)
	}
	if n, _ := lt.name(a1); n != "renamed" {
		t.Fatalf("name(a1) = %q", n)
	}
	lt.withdraw("pc", a1) // not pc's any more: nothing happens
	if n, _ := lt.name(a1); n != "renamed" {
		t.Fatalf("withdrawing a pair that does not exist removed %q", n)
	}
	lt.withdraw("renamed", a1)
	lt.withdraw("pc", a2)
	if lt.len() != 0 || len(lt.byAddr) != 0 {
		t.Fatalf("after withdrawing all: %v %v", lt.byName, lt.byAddr)
	}
}
