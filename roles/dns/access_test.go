package dns

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestAccess(t *testing.T) {
	c := siteConfig()
	next := &nextStage{}
	a := &access{allowed: c.Allowed, next: next}
	tests := []struct {
		client string
		served bool
	}{
		{"192.168.1.50", true},        // zone lan allows dns
		{"::ffff:192.168.1.50", true}, // the same, as a v4-mapped address
		{"10.0.0.50", false},          // zone lab does not
		{"10.0.0.1", true},            // but this box's own lab alias does
		{"203.0.113.9", false},        // outside every zone
		{"fd00::20", false},
	}
	for _, tt := range tests {
		req := newRequest(newQuery("example.com.", dns.TypeA), netip.MustParseAddr(tt.client), false)
		m := a.serve(context.Background(), req)
		if got := fromNext(m); got != tt.served {
			t.Errorf("client %s: served %v, want %v", tt.client, got, tt.served)
		}
		if !tt.served && (m.Rcode != dns.RcodeRefused || !req.refused || req.by != byAccess) {
			t.Errorf("client %s: rcode %s refused %v by %s", tt.client, dns.RcodeToString[m.Rcode], req.refused, req.by)
		}
	}
}
