package router

import (
	"fmt"
	"net/netip"
	"strings"

	"gatewayd/config"
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

// desired is what the router role should hold for a config.
type desired struct {
	held    bool
	nic     string
	routes  []Route
	sysctls []sysctl
}

// want derives the desired state; nic is the interface when the config
// names none.
func want(c *config.Config, nic string) desired {
	if c.Gateway.Interface != "" {
		nic = c.Gateway.Interface
	}
	d := desired{nic: nic}
	if _, held := c.RoleAlias("router"); !held {
		return d
	}
	d.held = true
	d.sysctls = forwardingSysctls(nic)
	if up := c.Router.Upstream; up.IsValid() {
		d.routes = append(d.routes, Route{To: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: up, Interface: nic})
	}
	for _, r := range c.Router.Routes {
		d.routes = append(d.routes, Route{To: r.To.Masked(), Via: r.Via, Interface: nic})
	}
	return d
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
