package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The types below are the file as written: what the TOML library decodes into
// and what the unknown-key check walks by reflection. Validation reads them and
// builds the public model (types.go); it never writes back into them, so a
// value in the model is always one validation resolved.

// Every field carries doc (one or two sentences for the key list and the man
// page, Keys) and, where leaving the key out means something, default: a TOML
// value when it is one, else words. A test refuses a field without doc.

type file struct {
	Gateway  fileGateway             `toml:"gateway" doc:"Box-wide settings: the NIC that carries the aliases, this box's name, where state lives, logging, management access and metrics."`
	Aliases  []fileAlias             `toml:"alias" doc:"One address on the NIC; each role (router, DHCP, DNS) gets its own alias so it can move to another box alone."`
	Upstream *fileUpstream           `toml:"upstream" doc:"A WAN port: a second NIC towards the ISP, the upstream zone, closed to the outside. With it, [router] upstream is not set."`
	Router   *fileRouter             `toml:"router" doc:"The router role: forwarding between zones and to the upstream, static routes, NAT."`
	DHCP     *fileDHCP               `toml:"dhcp" doc:"The DHCPv4 role: leases on every subnet a pool names."`
	DNS      *fileDNS                `toml:"dns" doc:"The DNS role: local names, a cache, forwarding to the upstreams."`
	Zones    map[string]*fileZone    `toml:"zone" doc:"A zone: subnets (and interfaces) sharing one security policy. Input and forwarding are closed unless allowed here."`
	Service  map[string]*fileService `toml:"service" doc:"A service of this box beyond the built-in ssh, ping, dhcp, dns and web: ports a zone may be allowed to reach."`
}

type fileGateway struct {
	Interface        string         `toml:"interface" doc:"The one NIC that carries every alias. Required."`
	Host             string         `toml:"host" default:"the hostname" doc:"This box's name; an alias whose host names another box is left alone."`
	StateDir         string         `toml:"state_dir" default:"\"/var/lib/gatewayd\"" doc:"Where the leases and the record of the addresses gatewayd added are kept (an absolute path)."`
	ControlSocket    string         `toml:"control_socket" default:"\"/run/gatewayd/control.sock\"" doc:"The unix socket the commands use to talk to the daemon (an absolute path)."`
	LogLevel         string         `toml:"log_level" default:"\"info\"" doc:"The least severe level logged: debug, info, warn or error."`
	LogFormat        string         `toml:"log_format" default:"\"text\"" doc:"How log lines are written: text or json. Lines go to standard error through a queue of 4096: when its reader (journald) stops taking them, the daemon drops the lines that do not fit and says how many once it takes them again, rather than let a DNS or DHCP path wait for the log."`
	ProbeTimeout     duration       `toml:"probe_timeout" default:"\"500ms\"" doc:"How long an ARP probe (RFC 5227) waits for a holder before an address is claimed; \"0s\" turns probing off."`
	AnnounceCount    int            `toml:"announce_count" default:"3" doc:"Gratuitous ARPs sent after adding an address (0-100)."`
	AnnounceInterval duration       `toml:"announce_interval" default:"\"500ms\"" doc:"The time between those gratuitous ARPs."`
	Management       []string       `toml:"management" default:"[\"ssh\", \"ping\"]" doc:"Services that stay reachable on the box's own addresses of the NIC (its primary address and any address not an alias) from the management zones, whatever the zones allow; [] for none."`
	ManagementZones  []string       `toml:"management_zones" default:"the zones that hold one of the NIC's own addresses, learned from the kernel" doc:"Zones the management services are reachable from."`
	Metrics          netip.AddrPort `toml:"metrics" default:"off" doc:"Address and port of the Prometheus metrics and the read-only web page, e.g. \"127.0.0.1:9253\". The firewall opens the port only to zones that allow \"web\"."`
}

type fileAlias struct {
	Name    string       `toml:"name" doc:"The alias's name, which roles, pools and services refer to. Required."`
	Address netip.Prefix `toml:"address" doc:"The address and its subnet length, e.g. \"192.168.1.2/24\". Required."`
	Label   string       `toml:"label" default:"<interface>:<n>, n the alias's position in the file" doc:"The address label ip addr shows: <interface>:<something>, at most 15 bytes. The bare interface name is refused: it is the NIC's own address."`
	Host    string       `toml:"host" default:"every box: no host" doc:"The box that holds the alias; other boxes leave it alone."`
	Adopt   bool         `toml:"adopt" default:"false" doc:"Take over the address when it is already on the NIC, added by hand or by another program, and matches the alias exactly; without it such an address is a conflict."`
}

type fileUpstream struct {
	Interface string       `toml:"interface" doc:"The WAN NIC; not [gateway] interface. Required."`
	Address   netip.Prefix `toml:"address" doc:"A static address and its subnet length, e.g. \"203.0.113.2/24\"; with gateway, instead of dhcp."`
	Gateway   netip.Addr   `toml:"gateway" doc:"The ISP's router on the address's subnet, the default route; with address."`
	DHCP      bool         `toml:"dhcp" default:"false" doc:"Take the address and the default route from the ISP's DHCP server, instead of address and gateway."`
	AcceptRA  bool         `toml:"accept_ra" default:"false" doc:"Accept IPv6 router advertisements from the ISP on this port; they are never accepted on the alias NIC."`
}

type fileRouter struct {
	Alias      string      `toml:"alias" doc:"The alias clients use as their default gateway. Required."`
	Upstream   netip.Addr  `toml:"upstream" default:"none" doc:"The next hop for everything outside the zones, on an alias subnet; not with [upstream]."`
	Masquerade bool        `toml:"masquerade" default:"false" doc:"NAT the zones' traffic to the upstream (out of the WAN port with [upstream])."`
	Routes     []fileRoute `toml:"route" doc:"A static route of this box, owned by gatewayd."`
}

type fileRoute struct {
	To  netip.Prefix `toml:"to" doc:"The destination subnet, e.g. \"172.16.0.0/16\". Required."`
	Via netip.Addr   `toml:"via" doc:"The next hop. Required."`
}

type fileDHCP struct {
	Alias            string       `toml:"alias" doc:"The alias the DHCP server answers from (its server identifier). Required."`
	LeaseTime        duration     `toml:"lease_time" default:"\"12h\"" doc:"How long a lease lasts, 1m to 365d."`
	Authoritative    *bool        `toml:"authoritative" default:"true" doc:"NAK requests for addresses on the served subnets that cannot be granted."`
	DeclineTime      duration     `toml:"decline_time" default:"\"24h\"" doc:"How long an address a client DECLINEd stays quarantined."`
	OfferTime        duration     `toml:"offer_time" default:"\"1m\"" doc:"How long an OFFERed address is held for the client."`
	ProbeBeforeOffer bool         `toml:"probe_before_offer" default:"false" doc:"ARP-probe an address with no lease before offering it."`
	Pools            []filePool   `toml:"pool" doc:"A dynamic range and the options handed out with it."`
	Static           []fileStatic `toml:"static" doc:"A fixed lease for one client."`
}

type filePool struct {
	Range      Range        `toml:"range" doc:"The addresses handed out, e.g. \"192.168.1.100-192.168.1.199\". Required."`
	Subnet     netip.Prefix `toml:"subnet" default:"the subnet of the alias holding the range" doc:"Only for a subnet reached through a DHCP relay."`
	Router     string       `toml:"router" default:"the router role's alias, when it is on the pool's subnet" doc:"Option 3: an alias name or an address."`
	DNS        []string     `toml:"dns" default:"the DNS role's alias" doc:"Option 6: alias names or addresses."`
	NTP        []string     `toml:"ntp" default:"none" doc:"Option 42: alias names or addresses."`
	Domain     string       `toml:"domain" default:"[dns] domain" doc:"Option 15, the clients' domain."`
	LeaseTime  duration     `toml:"lease_time" default:"[dhcp] lease_time" doc:"This pool's lease time."`
	RenewTime  duration     `toml:"renew_time" default:"half the lease" doc:"T1 (option 58)."`
	RebindTime duration     `toml:"rebind_time" default:"7/8 of the lease" doc:"T2 (option 59)."`
	Broadcast  netip.Addr   `toml:"broadcast" default:"none" doc:"Option 28, the subnet's broadcast address."`
	Routes     []fileRoute  `toml:"route" doc:"A classless static route (option 121); the default route is added to them."`
	Options    []fileOption `toml:"option" doc:"Any other DHCP option by code."`
}

// fileOption is any DHCP option by code; exactly one of Hex, Text, IP is set.
type fileOption struct {
	Code   int          `toml:"code" doc:"The option code, 1-254, not one gatewayd sets itself or one with its own key. Required."`
	Hex    string       `toml:"hex" doc:"The value as hex bytes, e.g. \"c0a80101\"; exactly one of hex, text or ip."`
	Text   string       `toml:"text" doc:"The value as text."`
	IP     []netip.Addr `toml:"ip" doc:"The value as IPv4 addresses, 4 bytes each."`
	Always bool         `toml:"always" default:"false" doc:"Send the option to every client; otherwise it is sent only when the client's parameter request list (option 55) asks for it."`
}

type fileStatic struct {
	MAC      mac        `toml:"mac" doc:"The client's hardware address; mac or client_id (or both) is required."`
	ClientID string     `toml:"client_id" doc:"Match on option 61: colon hex bytes or text."`
	Address  netip.Addr `toml:"address" doc:"The fixed address, on a subnet a pool serves. Required."`
	Hostname string     `toml:"hostname" default:"none" doc:"The client's name, answered by the DNS role as <hostname>.<domain>."`
}

type fileDNS struct {
	Alias      string        `toml:"alias" doc:"The alias the DNS server listens on. Required."`
	Domain     string        `toml:"domain" default:"\"home.arpa\"" doc:"The local domain: hosts, aliases and DHCP clients are <name>.<domain>."`
	Upstreams  []string      `toml:"upstreams" default:"none: local names only" doc:"Servers the rest is forwarded to, \"addr\" or \"addr:port\", tried with failover."`
	LocalTTL   duration      `toml:"local_ttl" default:"\"1m\"" doc:"The TTL of local answers."`
	Hosts      []fileHost    `toml:"host" doc:"A local name and its address (and the PTR record)."`
	CNAMEs     []fileCNAME   `toml:"cname" doc:"A local alias name."`
	Forward    []fileForward `toml:"forward" doc:"Conditional forwarding: a domain to its own servers."`
	Cache      fileDNSCache  `toml:"cache" doc:"The answer cache."`
	Rebind     fileRebind    `toml:"rebind" doc:"DNS rebinding protection."`
	Timeout    duration      `toml:"timeout" default:"\"4s\"" doc:"The whole-query deadline."`
	MaxFlight  int           `toml:"max_inflight" default:"1024" doc:"Queries forwarded at once, at most."`
	LogQueries bool          `toml:"log_queries" default:"false" doc:"Log every query (client, name, type, answer) at info level."`
}

type fileHost struct {
	Name    string     `toml:"name" doc:"The name, qualified by [dns] domain unless it ends in it. Required."`
	Address netip.Addr `toml:"address" doc:"Its address. Required."`
}

type fileCNAME struct {
	Name   string `toml:"name" doc:"The alias name. Required."`
	Target string `toml:"target" doc:"The name it points to. Required."`
}

type fileForward struct {
	Domain  string   `toml:"domain" doc:"The domain, forward or reverse (e.g. \"10.in-addr.arpa\"). Required."`
	Servers []string `toml:"servers" doc:"Its servers, \"addr\" or \"addr:port\". Required."`
}

type fileDNSCache struct {
	Size             int      `toml:"size" default:"10000" doc:"Answers kept."`
	MinTTL           duration `toml:"min_ttl" default:"\"0s\"" doc:"Answers are kept at least this long."`
	MaxTTL           duration `toml:"max_ttl" default:"\"1d\"" doc:"Answers are kept at most this long."`
	NegTTL           duration `toml:"negative_ttl" default:"\"1h\"" doc:"The longest a negative answer (NXDOMAIN, no data) is kept."`
	ServeStale       duration `toml:"serve_stale" default:"\"0s\"" doc:"How long past its expiry an entry may still answer while the upstreams fail; \"0s\" is off."`
	StaleAnswerAfter duration `toml:"stale_answer_after" default:"\"1800ms\"" doc:"How long a query waits for the upstream before a stale entry answers it (RFC 8767); \"0s\" answers stale data at once. At most [dns] timeout."`
}

type fileRebind struct {
	Protect *bool    `toml:"protect" default:"true" doc:"Drop public answers that carry private addresses."`
	Allow   []string `toml:"allow" default:"none" doc:"Domains whose answers may carry private addresses."`
}

type fileZone struct {
	Subnets    []netip.Prefix `toml:"subnets" default:"none" doc:"The zone's IPv4 subnets; a subnet belongs to one zone."`
	Interfaces []string       `toml:"interfaces" default:"none" doc:"Interfaces whose traffic belongs to the zone, e.g. [\"wg0\"]; not the alias NIC (split by subnet) nor the WAN port (the upstream zone)."`
	Allow      []string       `toml:"allow" default:"none" doc:"Services of this box the zone may reach."`
	Forward    []string       `toml:"forward" default:"none" doc:"Zones (or \"upstream\", everything outside every zone) its traffic may be routed to."`
}

type fileService struct {
	Ports []string `toml:"ports" doc:"\"tcp/22\", \"udp/53\", \"tcp/8000-8080\" or \"icmp\". Required."`
	Alias string   `toml:"alias" default:"every alias of this box" doc:"The alias that serves it."`
}

// duration is a time.Duration that reads "12h", "30m", "90s" or "2d"; set
// tells a written "0s" from a key left out.
type duration struct {
	time.Duration
	set bool
}

// UnmarshalText reads a Go duration, or a whole number of days ("2d").
func (d *duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > math.MaxInt64/int(24*time.Hour) {
			return fmt.Errorf("invalid duration %q: want e.g. \"12h\", \"30m\" or \"2d\"", s)
		}
		d.Duration, d.set = time.Duration(days)*24*time.Hour, true
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q: want e.g. \"12h\", \"30m\" or \"2d\"", s)
	}
	d.Duration, d.set = v, true
	return nil
}

// or is the duration, or def when the file left it out.
func (d duration) or(def time.Duration) time.Duration {
	if !d.set {
		return def
	}
	return d.Duration
}

// mac is an Ethernet hardware address as the file writes it.
type mac net.HardwareAddr

// UnmarshalText reads "00:0d:61:0b:d9:a0" (or with dashes).
func (m *mac) UnmarshalText(b []byte) error {
	hw, err := net.ParseMAC(string(b))
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("invalid MAC address %q: want six hex bytes like \"00:0d:61:0b:d9:a0\"", b)
	}
	*m = mac(hw)
	return nil
}
