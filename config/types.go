// Package config owns gatewayd's configuration file: the TOML schema, its defaults,
// and validation with file:line:column errors. It is the only TOML-aware code in
// gatewayd; every other package receives the typed, validated *Config. It touches
// nothing outside the file it is asked to read.
package config

import (
	"net/netip"
	"time"
)

// Config is a whole, validated gateway.toml. After Load every name reference
// (role → alias, pool router/dns → address, zone → service/zone) is resolved and
// defaults are filled in, so consumers never re-derive them.
type Config struct {
	// File is the path the config was read from ("" for an in-memory source).
	File string `toml:"-"`

	Gateway  Gateway             `toml:"gateway"`
	Aliases  []Alias             `toml:"alias"`
	Router   *Router             `toml:"router"`
	DHCP     *DHCP               `toml:"dhcp"`
	DNS      *DNS                `toml:"dns"`
	ZoneSet  map[string]*Zone    `toml:"zone"`
	Services map[string]*Service `toml:"service"`

	// Zones is ZoneSet in name order, followed by one implicit zone for every alias
	// subnet no zone names (closed default policy). Filled by Load.
	Zones []*Zone `toml:"-"`
}

// Gateway holds the box-wide settings.
type Gateway struct {
	Interface     string `toml:"interface"`
	Host          string `toml:"host"`
	StateDir      string `toml:"state_dir"`
	ControlSocket string `toml:"control_socket"`
	LogLevel      string `toml:"log_level"`
	LogFormat     string `toml:"log_format"`
	// ProbeTimeout is how long a claim waits for an ARP answer (RFC 5227) before
	// taking an address another host may hold. Zero disables probing.
	ProbeTimeout Duration `toml:"probe_timeout"`
	// AnnounceCount gratuitous ARPs are sent AnnounceInterval apart after an add.
	AnnounceCount    int      `toml:"announce_count"`
	AnnounceInterval Duration `toml:"announce_interval"`
}

// Alias is one address on the NIC.
type Alias struct {
	Name    string       `toml:"name"`
	Address netip.Prefix `toml:"address"`
	// Label is the address label (`eth1:0`); default "<interface>:<index>".
	Label string `toml:"label"`
	// DefaultLabel is true when Label was numbered by position, not written.
	DefaultLabel bool `toml:"-"`
	// Host names the box that holds the alias; default: every box (this one).
	Host string `toml:"host"`
}

// Subnet is the alias's network (address masked to its prefix length).
func (a Alias) Subnet() netip.Prefix { return a.Address.Masked() }

// Router is the router role: forwarding, the upstream route, NAT.
type Router struct {
	Alias      string     `toml:"alias"`
	Upstream   netip.Addr `toml:"upstream"`
	Masquerade bool       `toml:"masquerade"`
	Routes     []Route    `toml:"route"`
}

// Route is a static route (router role) or a classless static route (DHCP option 121).
type Route struct {
	To  netip.Prefix `toml:"to"`
	Via netip.Addr   `toml:"via"`
}

// DHCP is the DHCPv4 role.
type DHCP struct {
	Alias     string   `toml:"alias"`
	LeaseTime Duration `toml:"lease_time"`
	// Authoritative servers NAK requests for addresses on the subnets they serve
	// that they cannot grant. Default true.
	Authoritative *bool `toml:"authoritative"`
	// DeclineTime is how long an address a client DECLINEd stays quarantined.
	DeclineTime Duration `toml:"decline_time"`
	// OfferTime is how long an OFFERed address is held for the client.
	OfferTime Duration `toml:"offer_time"`
	// ProbeBeforeOffer ARP-probes an address with no lease before offering it.
	ProbeBeforeOffer bool     `toml:"probe_before_offer"`
	Pools            []Pool   `toml:"pool"`
	Static           []Static `toml:"static"`
}

// IsAuthoritative reports the effective authoritative setting.
func (d *DHCP) IsAuthoritative() bool { return d.Authoritative == nil || *d.Authoritative }

// Pool is a dynamic range and the options handed out with it.
type Pool struct {
	Range Range `toml:"range"`
	// Subnet is the pool's network. Default: the subnet of the alias containing the
	// range. Set it for a subnet reached through a DHCP relay.
	Subnet     netip.Prefix `toml:"subnet"`
	Router     string       `toml:"router"`
	DNS        []string     `toml:"dns"`
	NTP        []string     `toml:"ntp"`
	Domain     string       `toml:"domain"`
	LeaseTime  Duration     `toml:"lease_time"`
	RenewTime  Duration     `toml:"renew_time"`
	RebindTime Duration     `toml:"rebind_time"`
	Broadcast  netip.Addr   `toml:"broadcast"`
	Routes     []Route      `toml:"route"`
	Options    []Option     `toml:"option"`

	// Resolved by Load.
	RouterAddr netip.Addr   `toml:"-"`
	DNSAddrs   []netip.Addr `toml:"-"`
	NTPAddrs   []netip.Addr `toml:"-"`
	// Relayed is true when no alias of this host is on the pool's subnet.
	Relayed bool `toml:"-"`
}

// Option is any DHCP option by code; exactly one of Hex, Text, IP is set.
type Option struct {
	Code int          `toml:"code"`
	Hex  string       `toml:"hex"`
	Text string       `toml:"text"`
	IP   []netip.Addr `toml:"ip"`
}

// Static is a fixed lease.
type Static struct {
	MAC      MAC        `toml:"mac"`
	ClientID string     `toml:"client_id"`
	Address  netip.Addr `toml:"address"`
	Hostname string     `toml:"hostname"`
}

// DNS is the DNS role.
type DNS struct {
	Alias     string    `toml:"alias"`
	Domain    string    `toml:"domain"`
	Upstreams []string  `toml:"upstreams"`
	LocalTTL  Duration  `toml:"local_ttl"`
	Hosts     []Host    `toml:"host"`
	CNAMEs    []CNAME   `toml:"cname"`
	Forward   []Forward `toml:"forward"`
	Cache     DNSCache  `toml:"cache"`
	Rebind    DNSRebind `toml:"rebind"`
	Timeout   Duration  `toml:"timeout"`
	MaxFlight int       `toml:"max_inflight"`
	// UpstreamAddrs is Upstreams resolved to address:port. Filled by Load.
	UpstreamAddrs []netip.AddrPort `toml:"-"`
}

// Host is a local name.
type Host struct {
	Name    string     `toml:"name"`
	Address netip.Addr `toml:"address"`
}

// CNAME is a local alias name.
type CNAME struct {
	Name   string `toml:"name"`
	Target string `toml:"target"`
}

// Forward sends a domain (forward or reverse) to its own servers.
type Forward struct {
	Domain  string   `toml:"domain"`
	Servers []string `toml:"servers"`
	// ServerAddrs is Servers resolved. Filled by Load.
	ServerAddrs []netip.AddrPort `toml:"-"`
}

// DNSCache tunes the answer cache.
type DNSCache struct {
	Size       int      `toml:"size"`
	MinTTL     Duration `toml:"min_ttl"`
	MaxTTL     Duration `toml:"max_ttl"`
	NegTTL     Duration `toml:"negative_ttl"`
	ServeStale Duration `toml:"serve_stale"`
}

// DNSRebind is DNS rebinding protection.
type DNSRebind struct {
	// Protect drops public answers that carry private addresses. Default true.
	Protect *bool    `toml:"protect"`
	Allow   []string `toml:"allow"`
}

// Enabled reports the effective protection setting.
func (r DNSRebind) Enabled() bool { return r.Protect == nil || *r.Protect }

// Zone is a set of subnets with one security policy.
type Zone struct {
	Name    string         `toml:"-"`
	Subnets []netip.Prefix `toml:"subnets"`
	// Allow lists services of this box the zone may reach.
	Allow []string `toml:"allow"`
	// Forward lists zones (or "upstream") its traffic may be routed to.
	Forward []string `toml:"forward"`
	// Implicit zones were made by Load for an alias subnet no zone names.
	Implicit bool `toml:"-"`
}

// Service is a port set of this box, served on one alias (or on the NIC).
type Service struct {
	Name string `toml:"-"`
	// Ports are "tcp/22", "udp/53", "tcp/8000-8080", or "icmp".
	Ports []string `toml:"ports"`
	// Alias serves the service; "" means every alias of this host.
	Alias string `toml:"alias"`
	// Builtin services are defined by gatewayd, not the file.
	Builtin bool `toml:"-"`
	// PortSpecs is Ports parsed. Filled by Load.
	PortSpecs []PortSpec `toml:"-"`
}

// PortSpec is one protocol and port range (ports 0 for icmp).
type PortSpec struct {
	Proto    string // "tcp", "udp", "icmp"
	From, To uint16
}

// Duration is a time.Duration that reads "12h", "30m", "90s" or "2d".
type Duration struct{ time.Duration }
