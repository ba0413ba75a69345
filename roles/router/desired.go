package router

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Route is one route of the main table via a gateway.
type Route struct {
	To  netip.Prefix `json:"to"`
	Via netip.Addr   `json:"via"`
	// Interface is the device: the alias NIC, or the uplink's.
	Interface string `json:"interface"`
}

// String prints the route as `ip route` takes it.
func (r Route) String() string {
	dst := r.To.String()
	if r.To.Bits() == 0 {
		dst = "default"
	}
	return fmt.Sprintf("%s via %s dev %s", dst, r.Via, r.Interface)
}

// sysctl is one value under /proc/sys, keyed in path form
// ("net/ipv4/conf/eth1/rp_filter") so that interface names with dots work.
type sysctl struct {
	Key   string
	Value string
}

// name prints the key as `sysctl` takes it.
func (s sysctl) name() string {
	if strings.Contains(s.Key, ".") {
		return s.Key
	}
	return strings.ReplaceAll(s.Key, "/", ".")
}

// wan is the uplink's address and gateway as known now: the static ones
// from the Config, or the DHCP lease's; zero while there is no lease.
type wan struct {
	Interface string
	Address   netip.Prefix
	Gateway   netip.Addr
	// Expires is when the lease ends, and the address with it; zero for a
	// static address or an infinite lease.
	Expires time.Time
}

// wantedRoutes are c's routes as Set compares them with the kernel's:
// destinations masked (the kernel lists them so) and each on c.Interface
// unless it names its device; then the uplink's default route, when its
// gateway is known.
func wantedRoutes(c *Config, w wan) []Route {
	var out []Route
	for _, r := range c.Routes {
		r.To = r.To.Masked()
		if r.Interface == "" {
			r.Interface = c.Interface
		}
		out = append(out, r)
	}
	if w.Gateway.IsValid() {
		out = append(out, Route{To: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: w.Gateway, Interface: w.Interface})
	}
	return out
}

// wantedAddrs is the WAN address, when it is known.
func wantedAddrs(w wan) []ownedAddr {
	if !w.Address.IsValid() {
		return nil
	}
	return []ownedAddr{{Interface: w.Interface, Address: w.Address}}
}

// upstream is the gateway of the default route, or "".
func upstream(c *Config, w wan) string {
	for _, r := range wantedRoutes(c, w) {
		if r.To.Bits() == 0 {
			return r.Via.String()
		}
	}
	return ""
}

// wantedSysctls are the values Set holds for c, in the order they are set
// (and restored in the reverse one).
func wantedSysctls(c *Config) []sysctl {
	out := forwardingSysctls(c.Interface)
	if u := c.Uplink; u != nil {
		// accept_ra = 1 is ignored once forwarding is on; 2 is "accept
		// anyway", the value an IPv6 uplink needs.
		ra := "0"
		if u.AcceptRA {
			ra = "2"
		}
		out = append(out, promoteSysctl(u.Interface), sysctl{"net/ipv6/conf/" + u.Interface + "/accept_ra", ra})
	}
	return out
}

// promoteSysctl keeps the other addresses of a subnet when its primary is
// deleted: with promote_secondaries = 0 the kernel deletes every secondary
// with it, so moving the WAN address inside its subnet (the new one is
// added first, as a secondary) would lose the new address and the default
// route, and releasing it would take the addresses added by hand.
func promoteSysctl(dev string) sysctl {
	return sysctl{"net/ipv4/conf/" + dev + "/promote_secondaries", "1"}
}

// forwardingSysctls are the alias NIC's values. ip_forward comes first: the
// kernel turns all.accept_redirects off (and back on) with it. accept_ra is
// off so that no host in any zone becomes the box's IPv6 default router.
func forwardingSysctls(nic string) []sysctl {
	conf := func(dev, key string) string { return "net/ipv4/conf/" + dev + "/" + key }
	return []sysctl{
		{"net/ipv4/ip_forward", "1"},
		{conf("all", "send_redirects"), "0"},
		{conf(nic, "send_redirects"), "0"},
		{conf("all", "accept_redirects"), "0"},
		{conf(nic, "accept_redirects"), "0"},
		{conf(nic, "rp_filter"), "1"},
		{"net/ipv6/conf/" + nic + "/accept_ra", "0"},
	}
}

// sysctlInterface is the interface a per-interface key belongs to
// ("net/ipv4/conf/eth1/rp_filter": "eth1"), or "" for a global one.
func sysctlInterface(key string) string {
	f := strings.Split(key, "/")
	if len(f) == 5 && f[0] == "net" && f[2] == "conf" && f[3] != "all" && f[3] != "default" {
		return f[3]
	}
	return ""
}
