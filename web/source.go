package web

import (
	"time"

	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
)

// Source is what the page and the metrics read, once per request or scrape.
// The daemon implements it; every method must be safe to call from any
// goroutine at any time, including before the first apply and while a
// reload runs.
type Source interface {
	// Status is one reading of the box.
	Status() Status
	// StatusJSON is the control socket's answer to "status", the bytes
	// `gatewayd status --json` prints (before indenting).
	StatusJSON() ([]byte, error)
	// Leases are the DHCP role's live leases.
	Leases() []dhcp.Lease
}

// Status is one reading of the box: the running generation, its aliases and
// zones, and each part's own status. A nil part is one the daemon does not
// have; a part not held here reports itself as such.
type Status struct {
	Host       string
	Interface  string
	Config     string
	Generation int
	Applied    time.Time // when the running generation was applied; zero before
	Degraded   string    // why the running state is not the config's; "" when it is
	Aliases    []Alias
	Zones      []Zone

	Firewall    firewall.Counters
	FirewallErr string // the error reading the counters, if any
	Router      *router.Status
	DNS         *dns.Status
	DHCP        *dhcp.Status

	Reloads  Reloads
	Restores Restores
	// Histograms are the roles' distributions (the daemon converts them).
	Histograms Histograms
}

// Alias is one alias of the config as this box sees it.
type Alias struct {
	Name     string
	Address  string // "192.168.1.1/24"
	Label    string
	Host     string // the box that holds it; "" is every box
	Held     bool   // this box holds it
	Present  bool   // it is on the NIC
	Conflict string // the address is on the NIC but not gatewayd's
}

// Zone is one zone's policy in the running config.
type Zone struct {
	Name     string
	Subnets  []string
	Allow    []Service
	Forward  []string // zone names, or "upstream"
	Implicit bool     // made for an alias subnet no zone names
}

// Service is a service of this box a zone may reach.
type Service struct {
	Name  string
	Ports string // "tcp/22", "udp/53 tcp/53"
}

// Reloads count `gatewayd reload` and SIGHUP, successful or not.
type Reloads struct {
	Total       uint64
	Failed      uint64
	LastSuccess time.Time // zero: none yet
	Recent      []Reload  // newest first
}

// Reload is one reload's result.
type Reload struct {
	At      time.Time
	OK      bool
	Changes int    // steps applied
	Error   string // why it failed; "" when OK
}

// Restores count, by object ("addresses", "ruleset", "routes", "dhcp"),
// what the daemon's drift loop and the aliases' watch put back after
// someone else changed it. An object not in the map is not counted.
type Restores map[string]uint64

// Histograms are the latency distributions the roles keep. Each is optional;
// a nil or empty one is left out of the metrics.
type Histograms struct {
	// DNSQuery is the time from a query's arrival to its reply, by the stage
	// that answered (the keys of dns.Status.ByStage).
	DNSQuery map[string]*Histogram
	// LeaseFsync is the lease log's fsync time; LeaseBatch its batch sizes
	// (records per fsync).
	LeaseFsync *Histogram
	LeaseBatch *Histogram
}

// Histogram is a cumulative histogram, as Prometheus keeps one: Buckets maps
// each upper bound (seconds, or records for a size) to the count of
// observations at most that; Count and Sum cover every observation.
type Histogram struct {
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64
}
