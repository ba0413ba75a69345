package dns

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// pipeline is one generation of the role's answering logic, built from a
// spec by Set and swapped in atomically: handlers load it once per query.
type pipeline struct {
	spec   *spec
	first  stage
	routes *routeTable
	cache  *cacheStore // nil when the cache is off
	zone   *localZone
}

// parts are what outlives one pipeline: the lease names, the cache, the
// upstreams' health. build takes them from the Server.
type parts struct {
	leases    *leaseTable
	cache     *cacheStore
	flight    *flight[cacheKey, *dns.Msg]
	upstreams func(netip.AddrPort) *upstream
	counters  *counters
	now       func() time.Time
}

// build assembles the stages for sp:
// access → special → local → conditional → cache → rebind → forward.
func build(sp *spec, pt parts) *pipeline {
	p := &pipeline{spec: sp, cache: pt.cache}
	p.routes = buildRoutes(sp, pt.upstreams)
	var tail stage = &forwarder{slots: make(chan struct{}, max(1, sp.MaxFlight)), timeout: sp.Timeout}
	if sp.Rebind {
		allow := append(slices.Clone(sp.RebindAllow), sp.Domain)
		for _, f := range sp.Forward {
			allow = append(allow, f.Domain)
		}
		tail = &rebind{allow: allow, dropped: &pt.counters.rebind, next: tail}
	}
	if pt.cache != nil {
		tail = &cacheStage{store: pt.cache, flight: pt.flight, policy: policyOf(sp), now: pt.now, next: tail}
	}
	tail = &conditional{table: p.routes, next: tail}
	p.zone = buildZone(sp, pt.leases, p.routes, tail)
	sp1 := &special{domain: sp.Domain, ttl: sp.TTL, routes: p.routes, answers: p.zone.answersReverse, holds: p.zone.holdsReverse, next: p.zone}
	p.first = &access{allowed: sp.Allowed, next: sp1}
	return p
}

func policyOf(sp *spec) cachePolicy {
	return cachePolicy{
		minTTL: sp.Cache.MinTTL.Duration, maxTTL: sp.Cache.MaxTTL.Duration,
		negTTL: sp.Cache.NegTTL.Duration, serveStale: sp.Cache.ServeStale.Duration,
	}
}

// buildRoutes makes the route table; upstreams are shared between routes
// and generations by address, so their health carries over.
func buildRoutes(sp *spec, get func(netip.AddrPort) *upstream) *routeTable {
	attempt := min(2*time.Second, max(sp.Timeout/2, 100*time.Millisecond))
	mk := func(domain string, addrs []netip.AddrPort) *route {
		p := &pool{attempt: attempt}
		for _, a := range addrs {
			p.upstreams = append(p.upstreams, get(a))
		}
		return &route{domain: domain, pool: p}
	}
	t := &routeTable{byDomain: map[string]*route{}, def: mk(".", sp.Upstreams)}
	for _, f := range sp.Forward {
		t.byDomain[f.Domain] = mk(f.Domain, f.Servers)
	}
	return t
}

// buildZone makes the local zone from the spec's names.
func buildZone(sp *spec, leases *leaseTable, routes *routeTable, next stage) *localZone {
	z := &localZone{
		domain: sp.Domain, ttl: sp.TTL, nsName: sp.NSName,
		names: map[string]*localName{}, ents: map[string]bool{}, ptrs: map[netip.Addr]string{},
		reverse: sp.Served, leases: leases, routes: routes, next: next,
	}
	z.soa = &dns.SOA{
		Hdr: header(sp.Domain, dns.TypeSOA, sp.TTL), Ns: sp.NSName, Mbox: "hostmaster." + sp.Domain,
		Serial: uint32(time.Now().Unix()), Refresh: 3600, Retry: 600, Expire: 86400, Minttl: sp.TTL,
	}
	for _, n := range sp.Names {
		ln := z.names[n.Name]
		if ln == nil {
			ln = &localName{}
			z.names[n.Name] = ln
		}
		if !slices.Contains(ln.addrs, n.Addr) {
			ln.addrs = append(ln.addrs, n.Addr)
		}
		if _, ok := z.ptrs[n.Addr]; !ok {
			z.ptrs[n.Addr] = n.Name
		}
	}
	for _, c := range sp.CNAMEs {
		if z.names[c.Name] == nil { // a name with addresses cannot also be a CNAME
			z.names[c.Name] = &localName{cname: c.Target}
		}
	}
	for name := range z.names {
		for p := parent(name); p != "" && inDomain(p, z.domain) && p != z.domain; p = parent(p) {
			if z.names[p] == nil {
				z.ents[p] = true
			}
		}
	}
	return z
}

// parent strips the first label: "a.b.c." → "b.c."; "c." → "".
func parent(name string) string {
	i := strings.IndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return ""
	}
	return name[i+1:]
}

// answersReverse reports whether the local zone answers the reverse name
// p: it lies in one of the site's reverse zones or has a local PTR.
func (z *localZone) answersReverse(p netip.Prefix) bool {
	if _, ok := z.reverseZone(p); ok {
		return true
	}
	if p.IsSingleIP() {
		_, ok := z.ptrName(p.Addr())
		return ok
	}
	return false
}

// holdsReverse reports whether names the site answers lie below the
// reverse name p, which therefore exists (an empty non-terminal).
func (z *localZone) holdsReverse(p netip.Prefix) bool {
	for _, s := range z.reverse {
		if s.Overlaps(p) {
			return true
		}
	}
	for a := range z.ptrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
