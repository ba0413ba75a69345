package dhcp

import (
	"net"
	"net/netip"
	"time"
)

// Config is the DHCP role's whole desired state on this box. The controller
// computes it once from the site file; Set(nil) stops the role (no [dhcp]
// section, or another box holds the DHCP alias).
type Config struct {
	Interface string       // the NIC served (0.0.0.0:67 bound to it)
	Server    netip.Prefix `plan:"-"` // the DHCP alias: option 54 and every reply's source

	Authoritative    bool          // NAK requests for served subnets that cannot be granted
	DeclineTime      time.Duration `plan:"lease times"`
	OfferTime        time.Duration `plan:"lease times"`
	ProbeBeforeOffer bool          `plan:"probe_before_offer"` // ARP-probe an address with no lease before offering it

	Pools  []Pool
	Static []Static `plan:"static leases"`
}

// Pool is one dynamic range and what is handed out with it, resolved.
type Pool struct {
	Range   Range
	Subnet  netip.Prefix // the pool's network (masked)
	Relayed bool         // no alias of this box is on Subnet: served through a relay

	Router     netip.Addr // invalid: none
	DNS        []netip.Addr
	NTP        []netip.Addr
	Domain     string
	Broadcast  netip.Addr // invalid: none
	LeaseTime  time.Duration
	RenewTime  time.Duration
	RebindTime time.Duration
	Routes     []Route // option 121 (the default route is added when Router is set)
	Options    []Option
}

// Range is an inclusive IPv4 address range.
type Range struct{ Start, End netip.Addr }

// Route is one classless static route (option 121).
type Route struct {
	To  netip.Prefix
	Via netip.Addr
}

// Option is a configured option by code, its value already encoded.
type Option struct {
	Code  uint8
	Value []byte
}

// Static is a fixed lease, by MAC or client identifier.
type Static struct {
	MAC      net.HardwareAddr
	ClientID string
	Address  netip.Addr
	Hostname string
}
