package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// conn is the role's socket: UDP 0.0.0.0:67 bound to the NIC, so broadcasts
// arrive (a socket bound to the alias would never see a DISCOVER), with
// IP_PKTINFO to learn each request's destination and to set each reply's
// source to the DHCP alias. It also holds a netlink handle, made in the same
// network namespace, for the neighbour entries of unicast replies.
type conn struct {
	pc      *ipv4.PacketConn
	ifname  string
	ifindex int
	nl      *netlink.Handle
}

// readBuffer is the socket receive buffer: room for a burst of requests
// while the handler waits on the lock.
const readBuffer = 4 << 20

// listen opens the socket on ifname. It must run in the NIC's network
// namespace; the socket stays there.
func listen(ifname string) (*conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("opening DHCP socket on %s: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			s := int(fd)
			serr = errors.Join(
				unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
				unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_BROADCAST, 1),
				unix.BindToDevice(s, ifname),
			)
			if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, readBuffer) != nil {
				unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, readBuffer)
			}
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:67")
	if err != nil {
		return nil, fmt.Errorf("opening DHCP socket 0.0.0.0:67 on %s: %w", ifname, err)
	}
	p := ipv4.NewPacketConn(pc)
	if err := p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
		pc.Close()
		return nil, fmt.Errorf("enabling IP_PKTINFO on the DHCP socket on %s: %w", ifname, err)
	}
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("opening netlink for neighbour entries on %s: %w", ifname, err)
	}
	return &conn{pc: p, ifname: ifname, ifindex: ifi.Index, nl: nl}, nil
}

// read returns the next packet, its source and its destination address
// (invalid when the kernel did not say).
func (c *conn) read(buf []byte) (int, netip.AddrPort, netip.Addr, error) {
	n, cm, src, err := c.pc.ReadFrom(buf)
	if err != nil {
		return 0, netip.AddrPort{}, netip.Addr{}, err
	}
	var from netip.AddrPort
	if u, ok := src.(*net.UDPAddr); ok {
		from = u.AddrPort()
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	}
	var dst netip.Addr
	if cm != nil {
		if d, ok := netip.AddrFromSlice(cm.Dst.To4()); ok {
			dst = d
		}
	}
	return n, from, dst, nil
}

// write sends b from src (the alias) to dst out of the NIC.
func (c *conn) write(b []byte, src netip.Addr, dst netip.AddrPort) error {
	cm := &ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: c.ifindex}
	_, err := c.pc.WriteTo(b, cm, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return fmt.Errorf("sending to %s from %s on %s: %w", dst, src, c.ifname, err)
	}
	return nil
}

// neighbour installs addr → hw on the NIC, so the kernel can unicast to a
// client that has no address yet and so cannot answer ARP. dnsmasq does the
// same with SIOCSARP; ISC dhcpd and Kea use raw sockets instead.
func (c *conn) neighbour(addr netip.Addr, hw net.HardwareAddr) error {
	err := c.nl.NeighSet(&netlink.Neigh{
		LinkIndex: c.ifindex, Family: netlink.FAMILY_V4, State: netlink.NUD_REACHABLE,
		IP: addr.AsSlice(), HardwareAddr: hw,
	})
	if err != nil {
		return fmt.Errorf("setting neighbour %s at %s on %s: %w", addr, hw, c.ifname, err)
	}
	return nil
}

func (c *conn) close() error {
	c.nl.Close()
	if err := c.pc.Close(); err != nil {
		return fmt.Errorf("closing DHCP socket on %s: %w", c.ifname, err)
	}
	return nil
}
