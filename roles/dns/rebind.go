package dns

import (
	"context"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"
)

// nonPublic are ranges no public name should resolve to (beyond what
// netip's IsPrivate, IsLoopback, IsLinkLocalUnicast and IsUnspecified cover).
var nonPublic = mustPrefixes("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24")

// rebind is stage 7: DNS rebinding protection. An upstream answer for a
// public name that carries a private, loopback or link-local address lets
// a web page reach the site's own hosts; those records are dropped. Names
// under an allowed domain (the config's list, the conditional forwarding
// domains, and the site's domain) keep them. A site numbered with public
// addresses is not protected for those (as with dnsmasq's
// stop-dns-rebind): its own public names must keep resolving to them.
type rebind struct {
	allow   []string // lower-case FQDNs
	dropped *atomic.Uint64
	next    stage
}

func (r *rebind) serve(ctx context.Context, req *request) *dns.Msg {
	m := r.next.serve(ctx, req)
	if req.parked != nil {
		req.parked.rebind = r // filters the answer when it comes
		return nil
	}
	return r.filter(req, m)
}

// filter drops the records of m, the answer to req, that rebinding
// protection does not let through.
func (r *rebind) filter(req *request, m *dns.Msg) *dns.Msg {
	if m == nil || len(m.Answer) == 0 || r.allowed(req.name) {
		return m
	}
	kept := m.Answer[:0:0]
	for _, rr := range m.Answer {
		if a, ok := rrAddr(rr); ok && r.private(a) {
			r.dropped.Add(1)
			continue
		}
		kept = append(kept, rr)
	}
	if len(kept) == len(m.Answer) {
		return m
	}
	m.Answer = kept
	m.AuthenticatedData = false
	return m
}

func (r *rebind) allowed(name string) bool {
	for _, d := range r.allow {
		if inDomain(name, d) {
			return true
		}
	}
	return false
}

// private reports whether a public name must not resolve to a.
func (r *rebind) private(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
		return true
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
