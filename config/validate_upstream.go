package config

import (
	"fmt"
	"net/netip"
)

var upstreamAddress = hostPrefix{
	notIPv4: "the upstream address is an IPv4 address with a prefix length",
	needs:   `the WAN port needs the unicast address the ISP gave, e.g. "203.0.113.2/24"`,
}

// buildUpstream checks [upstream], the WAN port: its own NIC, and either a
// static address with a gateway or DHCP.
func buildUpstream(f *file, c *Config, p *problems) *Upstream {
	fu := f.Upstream
	if fu == nil {
		return nil
	}
	u := &Upstream{Interface: fu.Interface, Address: fu.Address, Gateway: fu.Gateway, DHCP: fu.DHCP, AcceptRA: fu.AcceptRA}
	switch {
	case u.Interface == "":
		p.at("upstream", "interface is missing: set interface = \"eth0\" (the NIC towards the ISP)")
	case !validIfname(u.Interface):
		p.at("upstream.interface", "%s", ifnameProblem(u.Interface))
	case u.Interface == c.Gateway.Interface:
		p.at("upstream.interface", "%s is [gateway] interface, the NIC that carries the aliases; the WAN port is a NIC of its own", u.Interface)
	}
	switch {
	case u.DHCP && (u.Address.IsValid() || u.Gateway.IsValid()):
		p.at("upstream.dhcp", "dhcp = true takes the address and the gateway from the ISP: write either dhcp = true or address and gateway, not both")
	case !u.DHCP && !u.Address.IsValid():
		p.at("upstream", "address is missing: set address = \"203.0.113.2/24\" and gateway = \"203.0.113.1\", or dhcp = true")
	case !u.DHCP:
		checkUpstreamAddress(f, c, p, u)
	}
	return u
}

// checkUpstreamAddress checks the static form: a host address of a subnet of
// its own, and the ISP's router on it.
func checkUpstreamAddress(f *file, c *Config, p *problems, u *Upstream) {
	if !checkHostPrefix(p, "upstream.address", u.Address, upstreamAddress) {
		return
	}
	subnet := u.Address.Masked()
	for i, a := range c.Aliases {
		if a.Address.Addr().Is4() && a.Subnet().Overlaps(subnet) {
			p.at("upstream.address", "subnet %s overlaps %s of alias %q (line %d); the WAN port's subnet is outside the site", subnet, a.Subnet(), a.Name, p.line(fmt.Sprintf("alias[%d].address", i)))
			break
		}
	}
	if z, sn, ok := zoneOverlapping(f, subnet); ok {
		p.at("upstream.address", "subnet %s overlaps %s of zone %q (line %d); the WAN port is the upstream zone, outside every zone", subnet, sn, z, p.line("zone."+z+".subnets"))
	}
	gw := u.Gateway
	switch {
	case !gw.IsValid():
		p.at("upstream", "gateway is missing: set gateway = \"<the ISP's router on %s>\", the default route", subnet)
	case !subnet.Contains(gw):
		p.at("upstream.gateway", "gateway %s is not on the upstream subnet %s; the ISP's router must be directly reachable on %s", gw, subnet, u.Interface)
	case gw == u.Address.Addr():
		p.at("upstream.gateway", "gateway %s is the upstream address itself; name the ISP's router", gw)
	case u.Address.Bits() < 31 && (gw == subnet.Addr() || gw == broadcast(subnet)):
		p.at("upstream.gateway", "gateway %s is the network or broadcast address of %s; name the ISP's router", gw, subnet)
	}
}

// zoneOverlapping finds a zone subnet of the file that overlaps sn.
func zoneOverlapping(f *file, sn netip.Prefix) (string, netip.Prefix, bool) {
	for _, name := range sortedKeys(f.Zones) {
		for _, zs := range f.Zones[name].Subnets {
			if zs.Addr().Is4() && zs.Masked().Overlaps(sn) {
				return name, zs.Masked(), true
			}
		}
	}
	return "", netip.Prefix{}, false
}

// routeSource says where the WAN port's default route comes from.
func (u *Upstream) routeSource() string {
	switch {
	case u.DHCP:
		return "from DHCP on " + u.Interface
	case !u.Gateway.IsValid():
		return "on " + u.Interface
	}
	return fmt.Sprintf("via %s on %s", u.Gateway, u.Interface)
}
