package router

import (
	"fmt"
	"net/netip"
	"strings"
)

// Route is one route of the main table through the NIC.
type Route struct {
	To  netip.Prefix `json:"to"`
	Via netip.Addr   `json:"via"`
	// Interface is the device; routes are always on the NIC.
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

// wantedRoutes are c's routes as Set compares them with the kernel's:
// destinations masked (the kernel lists them so) and each on c.Interface
// unless it names its device.
func wantedRoutes(c *Config) []Route {
	var out []Route
	for _, r := range c.Routes {
		r.To = r.To.Masked()
		if r.Interface == "" {
			r.Interface = c.Interface
		}
		out = append(out, r)
	}
	return out
}

// upstream is the gateway of c's default route, or "".
func upstream(c *Config) string {
	for _, r := range c.Routes {
		if r.To.Bits() == 0 {
			return r.Via.String()
		}
	}
	return ""
}

// forwardingSysctls are set in this order and restored in the reverse one.
// ip_forward comes first: the kernel turns all.accept_redirects off (and
// back on) with it.
func forwardingSysctls(nic string) []sysctl {
	conf := func(dev, key string) string { return "net/ipv4/conf/" + dev + "/" + key }
	return []sysctl{
		{"net/ipv4/ip_forward", "1"},
		{conf("all", "send_redirects"), "0"},
		{conf(nic, "send_redirects"), "0"},
		{conf("all", "accept_redirects"), "0"},
		{conf(nic, "accept_redirects"), "0"},
		{conf(nic, "rp_filter"), "1"},
	}
}
