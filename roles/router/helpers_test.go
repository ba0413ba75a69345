package router

import (
	"github.com/vishvananda/netlink"
)

type netlinkProto int

func routeProtoOf(p netlinkProto) netlink.RouteProtocol { return netlink.RouteProtocol(p) }
