package router

import (
	"net/netip"

	"github.com/vishvananda/netlink"
)

type netlinkProto int

func routeProtoOf(p netlinkProto) netlink.RouteProtocol { return netlink.RouteProtocol(p) }

// wire is a kernel with eth1 and eth2 up on 192.168.1.0/24 and no route via
// a gateway yet.
func wire() *kernelState {
	k := &kernelState{links: map[string]link{}, names: map[int]string{}, addrs: map[string][]netip.Prefix{},
		routes: map[netip.Prefix]kernelRoute{}, onLink: map[string][]netip.Prefix{}}
	for i, dev := range []string{"eth1", "eth2"} {
		k.links[dev] = link{index: i + 2, up: true}
		k.names[i+2] = dev
		k.onLink[dev] = []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	}
	return k
}
