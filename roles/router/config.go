package router

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Config is the router role's whole desired state on this box: forwarding
// and its sysctls on Interface, the routes gatewayd owns, and the WAN port.
// The controller computes it once from the site file; Set(nil) releases
// everything the role holds (another box holds the router alias, or there
// is no [router] section).
//
// The forwarding sysctls are derived from Interface (and Uplink) inside the
// package.
//
// The default route has exactly one source. Without an Uplink it is the
// Routes entry to 0.0.0.0/0 (the single-NIC layout: the upstream router on
// the alias wire). With an Uplink it is the Uplink's gateway (static, or
// learned by DHCP) on the Uplink's interface, and Routes must not hold a
// default route: Set refuses a Config with both, so the two can never fight
// over 0.0.0.0/0. Routes' other entries apply in both layouts.
type Config struct {
	Interface string `plan:"interface"` // the NIC the aliases live on
	// Routes are the static routes, and, without an Uplink, the default
	// route via the upstream on the alias wire. A route without an
	// Interface is on Interface.
	Routes []Route `plan:"routes"`
	// Uplink is the WAN port: an interface of its own towards the ISP,
	// which carries the default route. nil: no WAN port (the single-NIC
	// layout).
	Uplink *Uplink `plan:"uplink"`
}

// Uplink is the upstream interface and how it gets its address: either a
// static Address and Gateway, or DHCP. gatewayd owns the WAN address and the
// default route via the gateway as it owns its routes (see the package doc).
type Uplink struct {
	Interface string // the WAN NIC; never Config.Interface
	// Address is the static WAN address with its prefix; Gateway is the
	// ISP's router, inside Address's prefix. Both zero with DHCP.
	Address netip.Prefix
	Gateway netip.Addr
	// DHCP takes the address, the gateway and the ISP's DNS servers (shown
	// in Status, not used by the role) from a DHCPv4 lease.
	DHCP bool
	// Hostname is sent to the ISP's DHCP server (option 12), which some
	// ISPs require; "" sends none.
	Hostname string
	// AcceptRA lets the kernel take IPv6 router advertisements on the WAN
	// (accept_ra = 2, the value that still works with forwarding on);
	// false sets accept_ra = 0 there.
	AcceptRA bool
}

// check refuses a Config that Set cannot apply as written: these are
// mistakes of the caller, not states of the kernel.
func (c *Config) check() error {
	if c.Interface == "" {
		return errors.New("router config: no interface")
	}
	u := c.Uplink
	if u == nil {
		return nil
	}
	switch {
	case u.Interface == "":
		return errors.New("router config: uplink without an interface")
	case u.Interface == c.Interface:
		return fmt.Errorf("router config: uplink %s is the alias NIC; an upstream on the alias wire is a default route in Routes", u.Interface)
	case u.DHCP && (u.Address.IsValid() || u.Gateway.IsValid()):
		return fmt.Errorf("router config: uplink %s has both DHCP and a static address or gateway", u.Interface)
	case !u.DHCP && (!u.Address.Addr().Is4() || !u.Gateway.Is4()):
		return fmt.Errorf("router config: uplink %s needs an IPv4 address and gateway, or DHCP", u.Interface)
	case !u.DHCP && !u.Address.Masked().Contains(u.Gateway):
		return fmt.Errorf("router config: uplink %s: gateway %s is outside %s", u.Interface, u.Gateway, u.Address)
	}
	for _, r := range c.Routes {
		if r.To.Bits() == 0 {
			return fmt.Errorf("router config: a default route via %s and uplink %s: only one may give the default route", r.Via, u.Interface)
		}
	}
	return nil
}

// clone copies c so that the caller's later edits never reach the role.
func (c *Config) clone() *Config {
	cp := *c
	cp.Routes = slices.Clone(c.Routes)
	if c.Uplink != nil {
		u := *c.Uplink
		cp.Uplink = &u
	}
	return &cp
}
