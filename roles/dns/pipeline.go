package dns

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// pipeline is one generation of the role's answering logic, built from a
// Config by Set and swapped in atomically: handlers load it once per query.
type pipeline struct {
	cfg    *Config
	first  stage
	routes *routeTable
	cache  *cacheStore // nil when the cache is off
	zone   *localZone
	access *access
	qlog   *queryLog // nil unless cfg.LogQueries
}

// parts are what outlives one pipeline: the lease names, the cache, the
// upstreams' health. build takes them from the Server.
type parts struct {
	leases    *leaseTable
	cache     *cacheStore
	flight    *flight[cacheKey, flightResult]
	upstreams func(netip.AddrPort) *upstream
	counters  *counters
	now       func() time.Time
	qlog      *queryLog
}

// build assembles the stages for cfg:
// access → special → local → conditional → cache → rebind → forward.
func build(cfg *Config, pt parts) *pipeline {
	p := &pipeline{cfg: cfg, cache: pt.cache}
	if cfg.LogQueries {
		p.qlog = pt.qlog
	}
	p.routes = buildRoutes(cfg, pt.upstreams, &pt.counters.forward)
	var tail stage = &forwarder{
		slots: make(chan struct{}, max(1, cfg.MaxFlight)), timeout: cfg.Timeout,
		scrub: scrubber{local: cfg.Domain},
	}
	if cfg.Rebind {
		allow := append(slices.Clone(cfg.RebindAllow), cfg.Domain)
		for _, f := range cfg.Forward {
			allow = append(allow, f.Domain)
		}
		tail = &rebind{allow: allow, dropped: &pt.counters.rebind, next: tail}
	}
	if pt.cache != nil {
		tail = &cacheStage{store: pt.cache, flight: pt.flight, policy: policyOf(cfg), now: pt.now, next: tail}
	}
	tail = &conditional{table: p.routes, next: tail}
	p.zone = buildZone(cfg, pt.leases, p.routes, tail)
	sp1 := &special{domain: cfg.Domain, ttl: cfg.TTL, routes: p.routes, answers: p.zone.answersReverse, holds: p.zone.holdsReverse, next: p.zone}
	p.access = &access{allowed: cfg.Allowed, next: sp1}
	p.first = p.access
	return p
}

func policyOf(cfg *Config) cachePolicy {
	return cachePolicy{
		minTTL: cfg.Cache.MinTTL, maxTTL: cfg.Cache.MaxTTL,
		negTTL: cfg.Cache.NegTTL, serveStale: cfg.Cache.ServeStale,
		staleAfter: cfg.Cache.StaleAnswer,
	}
}

// buildRoutes makes the route table; upstreams are shared between routes
// and generations by address, so their health carries over.
func buildRoutes(cfg *Config, get func(netip.AddrPort) *upstream, stats *forwardStats) *routeTable {
	mk := func(domain string, addrs []netip.AddrPort) *route {
		p := &pool{stats: stats}
		for _, a := range addrs {
			p.upstreams = append(p.upstreams, get(a))
		}
		return &route{domain: domain, pool: p}
	}
	t := &routeTable{byDomain: map[string]*route{}, def: mk(".", cfg.Upstreams)}
	for _, f := range cfg.Forward {
		t.byDomain[f.Domain] = mk(f.Domain, f.Servers)
	}
	t.setScan()
	return t
}

// buildZone makes the local zone from the config's names.
func buildZone(cfg *Config, leases *leaseTable, routes *routeTable, next stage) *localZone {
	z := &localZone{
		domain: cfg.Domain, ttl: cfg.TTL, nsName: cfg.NSName,
		names: map[string]*localName{}, ents: map[string]bool{}, ptrs: map[netip.Addr]string{},
		reverse: cfg.Served, leases: leases, routes: routes, next: next,
	}
	z.soa = &dns.SOA{
		Hdr: header(cfg.Domain, dns.TypeSOA, cfg.TTL), Ns: cfg.NSName, Mbox: "hostmaster." + cfg.Domain,
		Serial: uint32(time.Now().Unix()), Refresh: 3600, Retry: 600, Expire: 86400, Minttl: cfg.TTL,
	}
	for _, n := range cfg.Names {
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
	for _, c := range cfg.CNAMEs {
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
