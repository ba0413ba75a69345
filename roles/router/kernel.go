package router

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// link is an interface as one Set saw it.
type link struct {
	index int
	up    bool // administratively up: the kernel keeps routes only on those
	mac   net.HardwareAddr
}

// kernelState is what a reconcile reads before it changes anything: one
// dump each of links, IPv4 addresses (only when an address is wanted or
// owned) and main-table routes. Planning works on it without the kernel.
type kernelState struct {
	links  map[string]link
	names  map[int]string               // interface names by index
	addrs  map[string][]netip.Prefix    // IPv4 addresses by interface
	valid  map[ownedAddr]uint32         // their remaining valid lifetimes, in seconds
	routes map[netip.Prefix]kernelRoute // metric-0 unicast routes by destination
	// onLink are the gateway-less link-scope routes (the connected
	// subnets) by interface: a next hop is usable only inside one.
	onLink map[string][]netip.Prefix
}

// kernelRoute is a main-table IPv4 route as the kernel has it.
type kernelRoute struct {
	Route
	proto netlink.RouteProtocol
}

// mine reports whether the kernel's route is the owned route o: the record
// says gatewayd added it and the kernel still has it as added.
func (k kernelRoute) mine(o Route) bool { return k.Route == o && k.proto == routeProto }

// readKernel takes the dumps; addrs says whether addresses are needed.
func (r *Router) readKernel(addrs bool) (*kernelState, error) {
	k := &kernelState{links: map[string]link{}, names: map[int]string{}, addrs: map[string][]netip.Prefix{}, valid: map[ownedAddr]uint32{}}
	links, err := r.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		k.names[a.Index] = a.Name
		k.links[a.Name] = link{index: a.Index, up: a.Flags&net.FlagUp != 0, mac: a.HardwareAddr}
	}
	if addrs {
		list, err := r.h.AddrList(nil, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("listing addresses: %w", err)
		}
		for _, a := range list {
			p, ok := prefixOf(a.IPNet)
			if name := k.names[a.LinkIndex]; ok && name != "" {
				k.addrs[name] = append(k.addrs[name], p)
				k.valid[ownedAddr{Interface: name, Address: p}] = uint32(a.ValidLft)
			}
		}
	}
	if err := r.readRoutes(k); err != nil {
		return nil, err
	}
	return k, nil
}

// readRoutes fills k.routes and k.onLink from one dump of the main table.
func (r *Router) readRoutes(k *kernelState) error {
	routes, err := r.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("listing routes: %w", err)
	}
	k.routes = map[netip.Prefix]kernelRoute{}
	k.onLink = map[string][]netip.Prefix{}
	for _, rt := range routes {
		dst, ok := prefixOf(rt.Dst)
		if !ok || rt.Type != unix.RTN_UNICAST {
			continue
		}
		name := k.names[rt.LinkIndex]
		gw, _ := netip.AddrFromSlice(rt.Gw.To4())
		if !gw.IsValid() && rt.Scope == netlink.SCOPE_LINK && name != "" {
			k.onLink[name] = append(k.onLink[name], dst)
		}
		if rt.Priority != 0 {
			continue // a new metric-0 route does not clash with it
		}
		k.routes[dst] = kernelRoute{Route: Route{To: dst, Via: gw, Interface: name}, proto: rt.Protocol}
	}
	return nil
}

// prefixOf converts an IPv4 net.IPNet, keeping its address bits (an
// interface address) as they are.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(addr, ones), true
}

// unreachable says why a route via r.Via on r.Interface cannot be added now
// ("" when it can): the kernel refuses a next hop outside the connected
// subnets of an interface that is up.
func (k *kernelState) unreachable(r Route) string {
	l, ok := k.links[r.Interface]
	switch {
	case !ok:
		return "interface " + r.Interface + " is absent"
	case !l.up:
		return "interface " + r.Interface + " is down"
	}
	for _, p := range k.onLink[r.Interface] {
		if p.Contains(r.Via) {
			return ""
		}
	}
	return fmt.Sprintf("%s is on no subnet of %s yet (no address there)", r.Via, r.Interface)
}
