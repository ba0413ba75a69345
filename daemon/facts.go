package daemon

import (
	"net"
	"net/netip"
	"slices"

	"gatewayd/config"
)

// facts are what the controller reads from the kernel (never writes) to
// compute the desired state: the alias NIC's own addresses, which the
// management access keeps reachable, and the box's interfaces, which plan
// and status list when no zone names them.
type facts struct {
	// Own are the alias NIC's IPv4 addresses that are not aliases of the
	// site file: its primary address and any added by hand.
	Own []netip.Prefix
	// Links are the names of every interface but loopback, sorted.
	Links []string
}

// readFacts reads the facts in the daemon's network namespace. What cannot
// be read is left out: a missing NIC has no own addresses yet.
func readFacts(c *config.Config) facts {
	var f facts
	aliases := map[netip.Addr]bool{}
	for _, a := range c.Aliases {
		aliases[a.Address.Addr()] = true
	}
	if ifi, err := net.InterfaceByName(c.Gateway.Interface); err == nil {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP.To4())
			if !ok || aliases[ip] {
				continue
			}
			bits, _ := ipn.Mask.Size()
			f.Own = append(f.Own, netip.PrefixFrom(ip, bits))
		}
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifi := range ifs {
			if ifi.Flags&net.FlagLoopback == 0 {
				f.Links = append(f.Links, ifi.Name)
			}
		}
	}
	slices.Sort(f.Links)
	return f
}
