package dns

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// route is where the queries for one domain go.
type route struct {
	domain string // lower-case FQDN; "." for the default upstreams
	pool   *pool
}

// routeTable holds the conditional forwarding domains (c.DNS.Forward) and
// the default route. The most specific domain wins.
type routeTable struct {
	byDomain map[string]*route
	def      *route
	// scan is byDomain's routes, the longest domain first, when they are
	// few (scanRoutes at most): then a scan of them beats hashing every
	// suffix of the name.
	scan []*route
}

// scanRoutes is the most conditional routes match scans.
const scanRoutes = 16

// setScan fills t.scan when byDomain is small enough.
func (t *routeTable) setScan() {
	t.scan = nil
	if len(t.byDomain) > scanRoutes {
		return
	}
	for _, r := range t.byDomain {
		t.scan = append(t.scan, r)
	}
	slices.SortFunc(t.scan, func(a, b *route) int { return cmp.Or(len(b.domain)-len(a.domain), strings.Compare(a.domain, b.domain)) })
}

// match returns the conditional route whose domain holds name, the most
// specific one, or nil.
func (t *routeTable) match(name string) *route {
	if t == nil || len(t.byDomain) == 0 {
		return nil
	}
	if t.scan != nil {
		for _, r := range t.scan {
			if inDomain(name, r.domain) {
				return r
			}
		}
		return nil
	}
	for i := 0; i < len(name); {
		if r, ok := t.byDomain[name[i:]]; ok {
			return r
		}
		j := strings.IndexByte(name[i:], '.')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return t.byDomain["."]
}

// conditional is stage 4: it picks the upstreams for the name, a
// conditional route or the default one, for the cache and forward stages.
type conditional struct {
	table *routeTable
	next  stage
}

func (c *conditional) serve(ctx context.Context, req *request) *dns.Msg {
	req.route = req.conditional(c.table)
	if req.route == nil {
		req.route = c.table.def
	}
	if req.route == nil || req.route.pool == nil || len(req.route.pool.upstreams) == 0 {
		// No upstream is configured: we know only the local names.
		req.by = byForward
		return req.reply(dns.RcodeServerFailure)
	}
	return c.next.serve(ctx, req)
}

// conditional is the conditional route for req's name, looked up once per
// request: three stages ask.
func (req *request) conditional(t *routeTable) *route {
	if !req.matched {
		req.matched, req.match = true, t.match(req.name)
	}
	return req.match
}
