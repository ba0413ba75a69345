package dns

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// The fast path answers the two queries a site asks most, a local name's
// addresses and a cache hit, straight from the datagram's bytes into the
// reply's, on the read loop: no dns.Msg, no allocation. It walks the
// pipeline's decisions in the pipeline's order (access, special, local,
// conditional, cache) and answers only where the general path would answer
// the same from the same data; anywhere else it declines and the general
// path takes the query. Tests hold the two paths to the same bytes
// (fastpath_test.go).

// answerWire answers q from client into buf, or reports false.
func (p *pipeline) answerWire(q *wireQuery, client netip.Addr, buf []byte, now time.Time) ([]byte, stageID, bool) {
	if p == nil || !p.access.permits(client) {
		return nil, 0, false
	}
	z := p.zone
	name := q.lowerName()
	local := inDomain(name, z.domain)
	cond := p.routes.match(name)
	if !local && cond == nil && neverForwarded(name) {
		return nil, 0, false // the special stage's, or a reverse name
	}
	switch {
	case local && cond != nil && len(cond.domain) > len(z.domain):
		// delegated to a forward below the site's domain: the cache's
	case local:
		if name == z.domain {
			return nil, 0, false
		}
		out, ok := z.wireAddrs(q, buf, name)
		return out, byLocal, ok
	case isSingleLabel(name):
		// A bare name is looked up under the domain: q.name has room
		// for it (a name under the domain is at most 254 bytes, or
		// it cannot be local).
		n := q.nameLen + len(z.domain)
		if n > len(q.name) {
			return nil, 0, false
		}
		copy(q.name[q.nameLen:], z.domain)
		full := unsafeString(q.name[:n])
		out, ok := z.wireAddrs(q, buf, full)
		return out, byLocal, ok
	}
	route := cond
	if route == nil {
		route = p.routes.def
	}
	if p.cache == nil || route == nil || route.pool == nil || len(route.pool.upstreams) == 0 {
		return nil, 0, false
	}
	key := cacheKey{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd}
	e, fresh := p.cache.get(key, now)
	if !fresh {
		return nil, 0, false
	}
	age := uint32((now.UnixNano() - e.stored) / int64(time.Second))
	out, ok := e.appendWire(buf, q, age)
	if ok {
		p.cache.hits.Add(1)
	}
	return out, byCache, ok
}

// neverForwardedTLDs are the top-level domains holding every name the
// special stage answers (localhost. and specialDomains; home.arpa. is
// under arpa.) and every reverse name: the general path's to answer.
var neverForwardedTLDs = func() []string {
	tlds := []string{"localhost.", "arpa."}
	for _, d := range specialDomains {
		if t := topLevel(d); !slices.Contains(tlds, t) {
			tlds = append(tlds, t)
		}
	}
	return tlds
}()

// neverForwarded reports whether name is under one of neverForwardedTLDs.
func neverForwarded(name string) bool {
	return slices.Contains(neverForwardedTLDs, topLevel(name))
}

// topLevel is the last label of an FQDN, with its dot: "arpa." of
// "home.arpa.".
func topLevel(name string) string {
	return name[strings.LastIndexByte(name[:len(name)-1], '.')+1:]
}

// wireAddrs answers the addresses of the local name (a lower-case FQDN in
// the zone), when it has addresses of the asked type and no CNAME.
func (z *localZone) wireAddrs(q *wireQuery, buf []byte, name string) ([]byte, bool) {
	if n := z.names[name]; n != nil {
		if n.cname != "" {
			return nil, false
		}
		return appendAddrWire(buf, q, n.addrs, z.ttl)
	}
	label := name[:len(name)-len(z.domain)]
	if len(label) < 2 || label[len(label)-1] != '.' || !isSingleLabel(label) {
		return nil, false
	}
	var held [8]netip.Addr
	addrs := z.leases.appendAddrs(held[:0], label[:len(label)-1])
	if len(addrs) == 0 {
		return nil, false
	}
	return appendAddrWire(buf, q, addrs, z.ttl)
}
