package dns

import (
	"fmt"
	"net/netip"
	"testing"
)

// TestRouteMatch: the most specific conditional domain wins, whether the
// table scans its few routes or walks the name's suffixes through the map.
func TestRouteMatch(t *testing.T) {
	forward := func(domains ...string) *routeTable {
		c := &Config{}
		for _, d := range domains {
			c.Forward = append(c.Forward, Forward{Domain: d})
		}
		return buildRoutes(c, func(netip.AddrPort) *upstream { return nil }, &forwardStats{})
	}
	small := forward("corp.example.", "eu.corp.example.", "16.172.in-addr.arpa.", "sub.home.arpa.")
	var many []string
	for i := range scanRoutes {
		many = append(many, fmt.Sprintf("pad%d.invalid.", i))
	}
	large := forward(append(many, "corp.example.", "eu.corp.example.", "16.172.in-addr.arpa.", "sub.home.arpa.")...)
	if small.scan == nil || large.scan != nil {
		t.Fatalf("scan: small %d routes, large %d", len(small.scan), len(large.scan))
	}
	withRoot := forward("corp.example.", ".")
	for _, tt := range []struct {
		table *routeTable
		name  string
		want  string
	}{
		{small, "www.corp.example.", "corp.example."},
		{small, "corp.example.", "corp.example."},
		{small, "x.eu.corp.example.", "eu.corp.example."},
		{small, "xcorp.example.", ""},
		{small, "5.5.16.172.in-addr.arpa.", "16.172.in-addr.arpa."},
		{small, "www.example.com.", ""},
		{withRoot, "www.example.com.", "."},
		{withRoot, "a.corp.example.", "corp.example."},
	} {
		for _, table := range []*routeTable{tt.table, large} {
			if table == large && tt.table != small {
				continue
			}
			got := ""
			if r := table.match(tt.name); r != nil {
				got = r.domain
			}
			if got != tt.want {
				t.Errorf("match(%s) with %d routes = %q, want %q", tt.name, len(table.byDomain), got, tt.want)
			}
		}
	}
}
