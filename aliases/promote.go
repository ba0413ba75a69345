package aliases

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// devconfPromoteSecondaries is IPV4_DEVCONF_PROMOTE_SECONDARIES of
// linux/ip.h (x/sys/unix names no devconf index).
const devconfPromoteSecondaries = 20

// confTimeout bounds one devconf request.
const confTimeout = 5 * time.Second

// openConf opens the rtnetlink socket that reads and writes the NIC's IPv4
// devconf, in the network namespace of the calling goroutine.
// netlink.Handle has no request for IFLA_AF_SPEC, hence a socket of its
// own; with it, promote_secondaries is set through netlink, answered for
// the namespace the socket was made in, so any goroutine may set it: the
// one that first sees a NIC appear is not always the daemon's own (a
// /proc/sys write answers for the thread that makes it).
func openConf() (*nl.SocketHandle, error) {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE) // no groups: requests only
	if err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	tv := unix.NsecToTimeval(confTimeout.Nanoseconds())
	s.SetSendTimeout(&tv)
	s.SetReceiveTimeout(&tv)
	return &nl.SocketHandle{Socket: s}, nil
}

// ensurePromote makes deleting the first address of a subnet promote a
// secondary one instead of deleting every address of that subnet with it
// (net.ipv4.conf.<nic>.promote_secondaries=1): without it, removing the
// router alias would take the DHCP and DNS aliases along. It writes only
// when the value differs.
func (n *NIC) ensurePromote(ifindex int) error {
	n.hmu.RLock()
	defer n.hmu.RUnlock()
	if n.conf == nil {
		return errClosed
	}
	on, err := n.promoteSecondaries(ifindex)
	if err != nil {
		return fmt.Errorf("reading net.ipv4.conf.%s.promote_secondaries: %w", n.ifname, err)
	}
	if on {
		return nil
	}
	req := n.confRequest(unix.RTM_SETLINK, unix.NLM_F_ACK, ifindex)
	spec := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	spec.AddRtAttr(unix.AF_INET, nil).
		AddRtAttr(unix.IFLA_INET_CONF, nil).
		AddRtAttr(devconfPromoteSecondaries, nl.Uint32Attr(1))
	req.AddData(spec)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("setting net.ipv4.conf.%s.promote_secondaries to 1: %w", n.ifname, err)
	}
	n.log.Info("set promote_secondaries", "index", ifindex)
	return nil
}

// promoteSecondaries reads the value from the link's IFLA_AF_SPEC: AF_INET,
// IFLA_INET_CONF, an array of every IPv4 devconf value, index 1 first. The
// caller holds n.hmu.
func (n *NIC) promoteSecondaries(ifindex int) (bool, error) {
	msgs, err := n.confRequest(unix.RTM_GETLINK, 0, ifindex).Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		return false, err
	}
	for _, m := range msgs {
		if len(m) < unix.SizeofIfInfomsg {
			continue
		}
		conf := nested(m[unix.SizeofIfInfomsg:], unix.IFLA_AF_SPEC, unix.AF_INET, unix.IFLA_INET_CONF)
		if off := 4 * (devconfPromoteSecondaries - 1); len(conf) >= off+4 {
			return binary.NativeEndian.Uint32(conf[off:]) != 0, nil
		}
	}
	return false, fmt.Errorf("the kernel's answer for interface %d has no IPv4 settings", ifindex)
}

func (n *NIC) confRequest(typ, flags, ifindex int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(ifindex)
	req.AddData(msg)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: n.conf}
	return req
}

// nested follows a path of attribute types down nested attributes and
// returns the last one's value, or nil.
func nested(b []byte, path ...int) []byte {
	for _, typ := range path {
		attrs, err := nl.ParseRouteAttr(b)
		if err != nil {
			return nil
		}
		b = nil
		for _, a := range attrs {
			if int(a.Attr.Type&nl.NLA_TYPE_MASK) == typ {
				b = a.Value
				break
			}
		}
		if b == nil {
			return nil
		}
	}
	return b
}
