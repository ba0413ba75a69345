package dns

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// access is stage 1: only clients in the zones that allow the "dns" service
// (and this box's own aliases) are served; anyone else gets REFUSED with RA
// clear, so the server is never an open resolver.
type access struct {
	allowed []netip.Prefix
	next    stage
}

func (a *access) serve(ctx context.Context, req *request) *dns.Msg {
	if a.permits(req.client) {
		return a.next.serve(ctx, req)
	}
	req.refused = true
	req.by = byAccess
	return req.reply(dns.RcodeRefused)
}

// permits reports whether client may use the server. The list is short (one
// prefix per served subnet), so a scan beats any tree.
func (a *access) permits(client netip.Addr) bool {
	client = client.Unmap()
	for _, p := range a.allowed {
		if p.Contains(client) {
			return true
		}
	}
	return false
}
