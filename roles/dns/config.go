package dns

import (
	"net/netip"
	"slices"
	"time"
)

// Config is the DNS role's whole desired state on this box, in the role's own
// terms: lower-case FQDNs with the final dot, resolved addresses. The
// controller computes it once from the site file; Set(nil) stops the role
// (no [dns] section, or another box holds the DNS alias).
type Config struct {
	Listen netip.Addr `plan:"-"`         // the DNS alias's address: the only address served
	Domain string     `plan:"domain"`    // the local domain, e.g. "home.arpa."
	TTL    uint32     `plan:"local_ttl"` // TTL of local answers, seconds
	NSName string     `plan:"ns name"`   // the DNS alias's name in the zone (SOA/NS)

	// Names are hosts, static-lease names and alias names, in that order:
	// the first one owning an address gives its PTR.
	Names  []Name  `plan:"hosts"`
	CNAMEs []CNAME `plan:"cnames"` // in config order
	// Served are the subnets whose reverse zones are answered locally.
	Served []netip.Prefix `plan:"reverse zones"`
	// Allowed are the clients served: the zones that may use the dns
	// service, and this box's own alias addresses.
	Allowed []netip.Prefix `plan:"clients"`

	Upstreams []netip.AddrPort
	Forward   []Forward `plan:"conditional forwarding"` // conditional forwarding, by domain

	Cache       Cache
	Rebind      bool          `plan:"rebind protection"` // drop public answers carrying private addresses
	RebindAllow []string      `plan:"rebind protection"` // domains exempt from rebind protection (FQDNs)
	Timeout     time.Duration `plan:"timeout"`
	MaxFlight   int           `plan:"max_inflight"` // forwarded queries in flight at most

	// LogQueries logs one line per query (client, name, type, rcode,
	// stage), at most queryLogRate a second.
	LogQueries bool `plan:"log_queries"`
}

// clone copies c deep enough that the caller's later edits of its slices
// never reach the running pipeline. Nil and empty slices stay as they are,
// so the copy is DeepEqual to c.
func (c *Config) clone() *Config {
	cp := *c
	cp.Names = slices.Clone(c.Names)
	cp.CNAMEs = slices.Clone(c.CNAMEs)
	cp.Served = slices.Clone(c.Served)
	cp.Allowed = slices.Clone(c.Allowed)
	cp.Upstreams = slices.Clone(c.Upstreams)
	cp.RebindAllow = slices.Clone(c.RebindAllow)
	cp.Forward = slices.Clone(c.Forward)
	for i := range cp.Forward {
		cp.Forward[i].Servers = slices.Clone(c.Forward[i].Servers)
	}
	return &cp
}

// Name is one local A record (and its PTR).
type Name struct {
	Name string
	Addr netip.Addr
}

// CNAME is one local alias name.
type CNAME struct{ Name, Target string }

// Forward sends a domain (forward or reverse) to its own servers.
type Forward struct {
	Domain  string
	Servers []netip.AddrPort
}

// Cache tunes the answer cache; Size 0 turns it off.
type Cache struct {
	Size       int
	MinTTL     time.Duration
	MaxTTL     time.Duration
	NegTTL     time.Duration
	ServeStale time.Duration // how long past expiry an answer may stand in; 0: never
	// StaleAnswer is how long a query for an expired name waits for the
	// upstreams before it is answered from stale data (RFC 8767 §5's client
	// response timer; the site file's default is 1.8 s, just under the 2 s
	// many stub resolvers wait) while the refresh goes on; 0 answers stale
	// data at once.
	StaleAnswer time.Duration
}
