// Package config owns gatewayd's configuration file: the TOML schema, its defaults,
// and validation with file:line:column errors. It is the only TOML-aware code in
// gatewayd; every other package receives the resolved, validated *Config. It
// touches nothing outside the file it is asked to read.
package config

import (
	"net"
	"net/netip"
	"time"
)

// Config is a whole, validated gateway.toml, resolved: every name reference
// (role → alias, pool router/dns → address, zone → service/zone) is resolved and
// every default is filled in, so consumers never re-derive them. It is built by
// validation from the file's schema (schema.go) and shares no memory with it.
type Config struct {
	// File is the path the config was read from ("" for an in-memory source).
	File string
	// Text is the file's text as parsed: the daemon keeps a config it must
	// return to (reload --confirm) across a restart, when the file on disk
	// may already be another.
	Text    []byte
	Gateway Gateway
	Aliases []Alias
	// Upstream is the WAN port; nil: no [upstream] (the upstream, if any, is
	// [router] upstream on the alias wire).
	Upstream *Upstream
	Router   *Router // nil: the file has no [router]
	DHCP     *DHCP   // nil: no [dhcp]
	DNS      *DNS    // nil: no [dns]
	// Zones are the file's zones in name order, followed by one implicit zone for
	// every alias subnet no zone names (closed default policy).
	Zones []*Zone
	// Services are the built-in services and the file's, by name.
	Services map[string]*Service
	// Warnings are what in the file is valid but likely a mistake, in file
	// order: print them (`gatewayd check` still exits 0) or log them.
	Warnings []Warning
}

// Gateway holds the box-wide settings, defaults filled.
type Gateway struct {
	Interface     string
	Host          string // default: the hostname
	StateDir      string
	ControlSocket string
	LogLevel      string // a slog level name; default "info"
	LogFormat     string // "text" (the default) or "json"
	// ProbeTimeout is how long a claim waits for an ARP answer (RFC 5227) before
	// taking an address another host may hold. Zero disables probing.
	ProbeTimeout time.Duration
	// AnnounceCount gratuitous ARPs are sent AnnounceInterval apart after an add.
	AnnounceCount    int
	AnnounceInterval time.Duration
	// Management are the services that stay reachable on the box's own
	// addresses of the NIC (its primary address and any address that is not
	// an alias) from the management zones. Default ssh and ping; empty: none.
	Management []string
	// ManagementZones are the zones the management services are reachable
	// from. Empty: the zones that hold one of the NIC's own addresses, which
	// only the kernel knows (the controller learns them).
	ManagementZones []string
	// Metrics is where the Prometheus metrics and the web page listen;
	// invalid: off. The built-in service "web" opens its port.
	Metrics netip.AddrPort
}

// Alias is one address on the NIC.
type Alias struct {
	Name    string
	Address netip.Prefix
	// Label is the address label (`eth1:0`); default "<interface>:<index>".
	Label string
	// DefaultLabel is true when Label was numbered by position, not written.
	DefaultLabel bool
	// Host names the box that holds the alias; "" means every box (this one).
	Host string
	// Adopt takes over the address when it is already on the NIC but not
	// added by gatewayd, if it matches the alias exactly (address, prefix
	// length); without it such an address is a conflict.
	Adopt bool
}

// Subnet is the alias's network (address masked to its prefix length).
func (a Alias) Subnet() netip.Prefix { return a.Address.Masked() }

// Upstream is the WAN port: a NIC of its own towards the ISP. Exactly one of
// Address (with Gateway) and DHCP is set.
type Upstream struct {
	Interface string
	Address   netip.Prefix // invalid: DHCP
	Gateway   netip.Addr   // the default route's next hop; invalid: DHCP
	DHCP      bool
	// AcceptRA accepts IPv6 router advertisements on the WAN port.
	AcceptRA bool
}

// Router is the router role: forwarding, the upstream route, NAT.
type Router struct {
	Alias    string
	Upstream netip.Addr // invalid: none (always with a WAN port)
	// Masquerade NATs the zones' traffic to the upstream; with a WAN port it
	// is SNAT out of that port.
	Masquerade bool
	Routes     []Route
}

// Route is a static route (router role) or a classless static route (DHCP option 121).
type Route struct {
	To  netip.Prefix
	Via netip.Addr
}

// DHCP is the DHCPv4 role.
type DHCP struct {
	Alias     string
	LeaseTime time.Duration
	// DeclineTime is how long an address a client DECLINEd stays quarantined.
	DeclineTime time.Duration
	// OfferTime is how long an OFFERed address is held for the client.
	OfferTime time.Duration
	// Authoritative servers NAK requests for addresses on the subnets they serve
	// that they cannot grant. Default true.
	Authoritative bool
	// ProbeBeforeOffer ARP-probes an address with no lease before offering it.
	ProbeBeforeOffer bool
	Pools            []Pool
	Static           []Static
}

// Pool is a dynamic range and the options handed out with it, resolved.
type Pool struct {
	Range Range
	// Subnet is the pool's network, masked. Default: the subnet of the alias
	// holding the range; written for a subnet reached through a DHCP relay.
	Subnet netip.Prefix
	// Relayed is true when no alias is on the pool's subnet.
	Relayed bool
	// Router is the address handed out as option 3 (an alias name resolved);
	// default the router role's alias when it is on the subnet; invalid: none.
	Router netip.Addr
	// DNS defaults to the DNS role's alias.
	DNS, NTP  []netip.Addr
	Domain    string
	Broadcast netip.Addr // invalid: none
	// LeaseTime defaults to [dhcp] lease_time, RenewTime (T1) to half of it,
	// RebindTime (T2) to 7/8 of it.
	LeaseTime, RenewTime, RebindTime time.Duration
	Routes                           []Route
	Options                          []Option
}

// Option is any other DHCP option by code, its value already in wire form.
type Option struct {
	Code  int
	Value []byte
	// Always sends the option to every client; otherwise only to a client
	// whose parameter request list (option 55) asks for it.
	Always bool
}

// Static is a fixed lease; MAC or ClientID (or both) is set.
type Static struct {
	MAC      net.HardwareAddr
	ClientID string
	Address  netip.Addr
	Hostname string
}

// DNS is the DNS role.
type DNS struct {
	Alias  string
	Domain string
	// Upstreams are tried with failover; port 53 unless written.
	Upstreams []netip.AddrPort
	LocalTTL  time.Duration
	Hosts     []Host
	CNAMEs    []CNAME
	Forward   []Forward
	Cache     DNSCache
	// Rebind drops public answers that carry private addresses, except for the
	// domains in RebindAllow. Default true.
	Rebind      bool
	RebindAllow []string
	// Timeout is the whole-query deadline.
	Timeout   time.Duration
	MaxFlight int
	// LogQueries logs every query.
	LogQueries bool
}

// Host is a local name.
type Host struct {
	Name    string
	Address netip.Addr
}

// CNAME is a local alias name.
type CNAME struct {
	Name, Target string
}

// Forward sends a domain (forward or reverse) to its own servers.
type Forward struct {
	Domain  string
	Servers []netip.AddrPort
}

// DNSCache tunes the answer cache.
type DNSCache struct {
	Size                               int
	MinTTL, MaxTTL, NegTTL, ServeStale time.Duration
	// StaleAnswerAfter is how long a query waits for the upstream before a
	// stale entry answers it (RFC 8767's client response timer); zero
	// answers stale data at once. At most the DNS timeout.
	StaleAnswerAfter time.Duration
}

// Zone is a set of subnets with one security policy.
type Zone struct {
	Name    string
	Subnets []netip.Prefix
	// Interfaces are the interfaces (not the alias NIC, not the WAN port)
	// whose traffic belongs to the zone.
	Interfaces []string
	// Allow lists services of this box the zone may reach.
	Allow []string
	// Forward lists zones (or Upstream) its traffic may be routed to.
	Forward []string
	// Implicit zones were made for an alias subnet no zone names.
	Implicit bool
}

// Service is a port set of this box, served on one alias (or on the NIC).
type Service struct {
	Name  string
	Ports []PortSpec
	// Alias serves the service; "" means every alias of this host.
	Alias string
	// Builtin services are defined by gatewayd, not the file.
	Builtin bool
}

// PortSpec is one protocol and port range (ports 0 for icmp).
type PortSpec struct {
	Proto    string // "tcp", "udp", "icmp"
	From, To uint16
}
