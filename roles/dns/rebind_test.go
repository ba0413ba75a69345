package dns

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

func TestRebind(t *testing.T) {
	answer := func(addrs ...string) *scripted {
		return &scripted{answer: func(req *request) *dns.Msg {
			m := req.reply(dns.RcodeSuccess)
			m.AuthenticatedData = true
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: header(req.q.Name, dns.TypeCNAME, 60), Target: "target.example.net."})
			for _, a := range addrs {
				m.Answer = append(m.Answer, aRecord("target.example.net.", netip.MustParseAddr(a), 60))
			}
			return m
		}}
	}
	tests := []struct {
		name  string
		addrs []string
		kept  int // answer records left (the CNAME counts)
	}{
		{"www.example.com.", []string{"93.184.216.34"}, 2},
		{"evil.example.com.", []string{"192.168.1.20"}, 1},
		{"evil.example.com.", []string{"10.1.2.3", "93.184.216.34"}, 2},
		{"evil.example.com.", []string{"127.0.0.1"}, 1},
		{"evil.example.com.", []string{"169.254.1.1"}, 1},
		{"evil.example.com.", []string{"100.64.0.1"}, 1},
		{"evil.example.com.", []string{"0.0.0.0"}, 1},
		{"evil.example.com.", []string{"fd00::1", "fe80::1", "::1", "::ffff:10.0.0.1"}, 1},
		{"www.example.com.", []string{"198.18.0.1"}, 2}, // benchmarking space is not private
		{"x.plex.direct.", []string{"192.168.1.20"}, 2}, // allowed domain
		{"host.corp.example.", []string{"10.8.0.9"}, 2}, // a conditional forward's domain
	}
	for _, tt := range tests {
		var dropped atomic.Uint64
		r := &rebind{
			allow:   []string{"plex.direct.", "corp.example.", "home.arpa."},
			dropped: &dropped, next: answer(tt.addrs...),
		}
		m := r.serve(context.Background(), testRequest(tt.name, dns.TypeA))
		if len(m.Answer) != tt.kept {
			t.Errorf("%s → %v: kept %d records, want %d: %v", tt.name, tt.addrs, len(m.Answer), tt.kept, m.Answer)
		}
		want := uint64(len(tt.addrs) + 1 - tt.kept)
		if dropped.Load() != want {
			t.Errorf("%s → %v: counted %d drops, want %d", tt.name, tt.addrs, dropped.Load(), want)
		}
		if want > 0 && m.AuthenticatedData {
			t.Errorf("%s: AD still set on an answer we changed", tt.name)
		}
	}
}
