package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"gatewayd/lab"
)

// peer is a hand-made DHCP client or relay: a UDP socket in a namespace.
type peer struct {
	conn *net.UDPConn
}

// openPeer binds laddr ("0.0.0.0:68", "198.51.100.1:67") inside ns, to
// eth0, so a client without an address can broadcast.
func openPeer(ns *lab.Namespace, laddr string) (*peer, error) {
	var p *peer
	err := ns.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) {
				serr = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1),
					unix.BindToDevice(int(fd), "eth0"))
			})
			return serr
		}}
		c, err := lc.ListenPacket(context.Background(), "udp4", laddr)
		if err != nil {
			return err
		}
		p = &peer{conn: c.(*net.UDPConn)}
		return nil
	})
	return p, err
}

// exchange sends pkt to dst and returns the first reply with its xid, and
// where it came from; nil after the timeout.
func (p *peer) exchange(pkt *dhcpv4.DHCPv4, dst string, timeout time.Duration) (*dhcpv4.DHCPv4, netip.AddrPort, error) {
	if _, err := p.conn.WriteToUDPAddrPort(pkt.ToBytes(), netip.MustParseAddrPort(dst)); err != nil {
		return nil, netip.AddrPort{}, err
	}
	return p.await(pkt.TransactionID, timeout)
}

func (p *peer) await(xid dhcpv4.TransactionID, timeout time.Duration) (*dhcpv4.DHCPv4, netip.AddrPort, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for {
		p.conn.SetReadDeadline(deadline)
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || isTimeout(err) {
				return nil, netip.AddrPort{}, nil
			}
			return nil, netip.AddrPort{}, err
		}
		r, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || r.TransactionID != xid || r.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		return r, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (p *peer) close() { p.conn.Close() }

// mustReply is exchange that wants a reply of type want. Like a real
// client it sends the request up to three times, 2 s apart.
func (p *peer) mustReply(pkt *dhcpv4.DHCPv4, dst string, want dhcpv4.MessageType) (*dhcpv4.DHCPv4, netip.AddrPort, error) {
	var r *dhcpv4.DHCPv4
	var from netip.AddrPort
	var err error
	for try := 0; try < 3 && r == nil && err == nil; try++ {
		r, from, err = p.exchange(pkt, dst, 2*time.Second)
	}
	if err != nil {
		return nil, from, err
	}
	if r == nil {
		return nil, from, fmt.Errorf("no reply to %s", pkt.MessageType())
	}
	if r.MessageType() != want {
		return r, from, fmt.Errorf("reply %s to %s, want %s (%s)", r.MessageType(), pkt.MessageType(), want, r.Options.Get(dhcpv4.OptionMessage))
	}
	return r, from, nil
}
