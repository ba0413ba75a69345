package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
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

// Contains reports whether a is inside the range.
func (r Range) Contains(a netip.Addr) bool {
	return r.Start.IsValid() && !a.Less(r.Start) && !r.End.Less(a)
}

// Size is the number of addresses in the range.
func (r Range) Size() int { return int(addrU32(r.End)-addrU32(r.Start)) + 1 }

func (r Range) String() string { return r.Start.String() + "-" + r.End.String() }

// valid reports whether the range is two IPv4 addresses in order.
func (r Range) valid() bool { return r.Start.Is4() && r.End.Is4() && !r.End.Less(r.Start) }

// Route is one classless static route (option 121).
type Route struct {
	To  netip.Prefix
	Via netip.Addr
}

// Option is a configured option by code, its value already encoded. It is
// sent to clients that ask for it (parameter request list), and to every
// client when Always is set.
type Option struct {
	Code   uint8
	Value  []byte
	Always bool
}

// Static is a fixed lease, by MAC or client identifier. ClientID is option
// 61 as colon hex ("01:02:00:00:00:00:bb") or, without colons, as text.
type Static struct {
	MAC      net.HardwareAddr
	ClientID string
	Address  netip.Addr
	Hostname string
}

// validate refuses what the role cannot serve; the controller has checked
// the site file, so an error here is a bug upstream, named precisely.
func (c *Config) validate() error {
	if c.Interface == "" {
		return errors.New("no interface to serve on")
	}
	if !c.Server.Addr().Is4() {
		return fmt.Errorf("server address %s is not IPv4", c.Server)
	}
	for i, p := range c.Pools {
		if !p.Range.valid() {
			return fmt.Errorf("pool %d: range %s is not two IPv4 addresses in order", i, p.Range)
		}
		if !p.Subnet.Addr().Is4() {
			return fmt.Errorf("pool %s: subnet %s is not IPv4", p.Range, p.Subnet)
		}
	}
	return nil
}

// clone copies c deeply, so the role keeps what it was given even when the
// caller changes its value afterwards.
func (c *Config) clone() *Config {
	out := *c
	out.Pools = slices.Clone(c.Pools)
	for i := range out.Pools {
		p := &out.Pools[i]
		p.DNS, p.NTP, p.Routes = slices.Clone(p.DNS), slices.Clone(p.NTP), slices.Clone(p.Routes)
		p.Options = slices.Clone(p.Options)
		for j := range p.Options {
			p.Options[j].Value = slices.Clone(p.Options[j].Value)
		}
	}
	out.Static = slices.Clone(c.Static)
	for i := range out.Static {
		out.Static[i].MAC = slices.Clone(out.Static[i].MAC)
	}
	return &out
}
