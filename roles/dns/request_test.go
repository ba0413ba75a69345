package dns

import (
	"testing"

	"github.com/miekg/dns"
)

func TestInDomain(t *testing.T) {
	tests := []struct {
		name, domain string
		want         bool
	}{
		{"nas.home.arpa.", "home.arpa.", true},
		{"home.arpa.", "home.arpa.", true},
		{"myhome.arpa.", "home.arpa.", false},
		{"arpa.", "home.arpa.", false},
		{"anything.", ".", true},
		{"a.b.local.", "local.", true},
		{"localhost.", "local.", false},
	}
	for _, tt := range tests {
		if got := inDomain(tt.name, tt.domain); got != tt.want {
			t.Errorf("inDomain(%q, %q) = %v, want %v", tt.name, tt.domain, got, tt.want)
		}
	}
}

func TestNewRequest(t *testing.T) {
	tests := []struct {
		name     string
		q        *dns.Msg
		wantName string
		edns, do bool
		size     int
	}{
		{"plain", newQuery("NAS.Home.Arpa.", dns.TypeA), "nas.home.arpa.", false, false, 512},
		{"edns", newQuery("x.", dns.TypeA, withEDNS(4096, true)), "x.", true, true, udpSize},
		{"small edns", newQuery("x.", dns.TypeA, withEDNS(100, false)), "x.", true, false, 512},
		{"mid edns", newQuery("x.", dns.TypeA, withEDNS(1000, false)), "x.", true, false, 1000},
	}
	for _, tt := range tests {
		r := newRequest(tt.q, testClient, false)
		if r.name != tt.wantName || r.edns != tt.edns || r.do != tt.do || r.size != tt.size {
			t.Errorf("%s: got name %q edns %v do %v size %d", tt.name, r.name, r.edns, r.do, r.size)
		}
	}
}

func TestLeaseLabel(t *testing.T) {
	tests := map[string]string{
		"Laptop":                 "laptop",
		"laptop.home.arpa":       "laptop",
		"my-pc":                  "my-pc",
		"-bad":                   "",
		"bad-":                   "",
		"has space":              "",
		"under_score":            "",
		"":                       "",
		"ÿ":                      "",
		string(make([]byte, 64)): "",
	}
	for in, want := range tests {
		if got := LeaseLabel(in); got != want {
			t.Errorf("LeaseLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
