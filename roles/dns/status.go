package dns

import (
	"sync/atomic"

	"github.com/miekg/dns"
)

// stageID names the stage that answered a query, for the counters.
type stageID uint8

const (
	byNone     stageID = iota // dropped: no reply sent
	byServer                  // the handler itself: FORMERR, BADVERS, NOTIMP
	byAccess                  // REFUSED to a client outside the served zones
	bySpecial                 // a special-use name answered locally
	byLocal                   // the local zone
	byCache                   // a cached answer
	byStale                   // an expired cached answer served while upstreams fail
	byForward                 // an upstream's answer
	byOverload                // SERVFAIL because MaxFlight queries were in flight, or maxWorkers workers busy
	numStages
)

var stageNames = [numStages]string{"dropped", "server", "access", "special", "local", "cache", "stale", "forward", "overload"}

func (s stageID) String() string { return stageNames[s] }

// counters are the role's query counters, updated on the hot path.
type counters struct {
	byStage   [numStages]atomic.Uint64
	byRcode   [24]atomic.Uint64 // index = rcode; BADVERS is 16, the rest share the last slot
	malformed atomic.Uint64     // queries that did not parse
	panics    atomic.Uint64     // handler panics recovered
	truncated atomic.Uint64     // UDP replies sent with TC
	unsent    atomic.Uint64     // UDP replies the kernel did not take (batch.send)
	rebind    atomic.Uint64     // answer records dropped by rebind protection
	forward   forwardStats      // what forwarding did (exchange.go)
}

func (c *counters) count(by stageID, rcode int) {
	c.byStage[by].Add(1)
	if by == byNone {
		return
	}
	if rcode < 0 || rcode >= len(c.byRcode) {
		rcode = len(c.byRcode) - 1
	}
	c.byRcode[rcode].Add(1)
}

// Status is what `gatewayd status` shows for the DNS role.
type Status struct {
	Running bool   `json:"running"`
	Addr    string `json:"addr,omitempty"`
	Domain  string `json:"domain,omitempty"`
	// ByStage counts queries by the stage that answered them.
	ByStage map[string]uint64 `json:"by_stage"`
	// ByRcode counts replies by response code (NOERROR, NXDOMAIN, ...).
	ByRcode   map[string]uint64 `json:"by_rcode"`
	Malformed uint64            `json:"malformed"`
	Panics    uint64            `json:"panics"`
	Truncated uint64            `json:"truncated"`
	Unsent    uint64            `json:"replies_unsent"` // UDP replies dropped: a full send buffer, a refused destination
	Rebind    uint64            `json:"rebind_dropped"`
	Leases    int               `json:"lease_names"`
	Cache     CacheStatus       `json:"cache"`
	Forward   ForwardStatus     `json:"forward"`
	Upstreams []UpstreamStatus  `json:"upstreams,omitempty"`
	// Latency is the time from each query's arrival to its reply, by the
	// stage that answered (as in ByStage; queries without a reply are not
	// in it), since the server started.
	Latency map[string]Histogram `json:"latency,omitempty"`
}

// ForwardStatus counts what the forwarding discipline did.
type ForwardStatus struct {
	Retransmits   uint64 `json:"retransmits"`    // a query asked again of an upstream already asked
	Hedges        uint64 `json:"hedges"`         // a query asked of the next upstream while the first may still answer
	ClientRetries uint64 `json:"client_retries"` // a client's retry of a query in flight that made us ask again
	EDNSFallbacks uint64 `json:"edns_fallbacks"` // a query asked again without EDNS after FORMERR or NOTIMP
	Scrubbed      uint64 `json:"scrubbed"`       // records dropped from upstream answers (out of bailiwick, or the site's own names)
	Timeouts      uint64 `json:"timeouts"`       // queries whose deadline passed with every upstream silent (UDP clients get no reply)
	// Unwanted counts datagrams from an upstream's address and port that
	// answer no query asked there (an unknown ID, another question): signs
	// of spoofing. The socket they came on carries no further query.
	Unwanted uint64 `json:"unwanted_replies"`
}

// CacheStatus describes the answer cache.
type CacheStatus struct {
	Size      int    `json:"size"`
	Capacity  int    `json:"capacity"`
	Hits      uint64 `json:"hits"`
	Misses    uint64 `json:"misses"`
	Stale     uint64 `json:"stale_served"`
	Merged    uint64 `json:"merged"` // misses that waited for an identical query in flight
	Evictions uint64 `json:"evictions"`
}

// UpstreamStatus describes one upstream server.
type UpstreamStatus struct {
	Addr     string  `json:"addr"`
	Domain   string  `json:"domain,omitempty"` // "" for the default upstreams
	Healthy  bool    `json:"healthy"`          // not marked down
	Lossy    bool    `json:"lossy"`            // lost a query lately, not yet marked down
	Queries  uint64  `json:"queries"`          // UDP queries sent, retransmissions and probes included
	Failures uint64  `json:"failures"`
	RTTMilli float64 `json:"rtt_ms"`    // smoothed round-trip time
	RTOMilli float64 `json:"rto_ms"`    // the current retransmission timeout
	PlainDNS bool    `json:"plain_dns"` // asked without EDNS: it failed EDNS lately
}

// snapshot copies the counters into s.
func (c *counters) snapshot(s *Status) {
	s.ByStage = map[string]uint64{}
	for i := range c.byStage {
		if v := c.byStage[i].Load(); v > 0 {
			s.ByStage[stageID(i).String()] = v
		}
	}
	s.ByRcode = map[string]uint64{}
	for i := range c.byRcode {
		if v := c.byRcode[i].Load(); v > 0 {
			name, ok := dns.RcodeToString[i]
			switch {
			case i == dns.RcodeBadVers:
				name = "BADVERS" // the table says BADSIG; this server does no TSIG
			case !ok || i == len(c.byRcode)-1:
				name = "OTHER"
			}
			s.ByRcode[name] = v
		}
	}
	s.Malformed = c.malformed.Load()
	s.Panics = c.panics.Load()
	s.Truncated = c.truncated.Load()
	s.Unsent = c.unsent.Load()
	s.Rebind = c.rebind.Load()
	f := &c.forward
	s.Forward = ForwardStatus{
		Retransmits: f.retransmits.Load(), Hedges: f.hedges.Load(), ClientRetries: f.clientRetries.Load(),
		EDNSFallbacks: f.ednsFallbacks.Load(), Scrubbed: f.scrubbed.Load(), Timeouts: f.timeouts.Load(),
		Unwanted: f.unwanted.Load(),
	}
}
