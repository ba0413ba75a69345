package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"gatewayd/ether"
)

// transport is the DHCP client's sockets on one interface, by index: packet
// sockets, since a lease is asked for before the interface has an address,
// and they see the replies before the firewall does and send past it, so no
// rule has to let DHCP in or out.
//
// Frames are sent through package ether, gatewayd's one encoder of
// Ethernet, IPv4 and UDP headers. They are read on a socket of their own
// (mdlayher/packet): ether's socket cannot carry them, being bound to
// EtherType ARP, with one reader goroutine that parses every frame as ARP
// for the probes waiting on it and hands nothing else out; reading DHCP
// there would mean a second EtherType, a filter and a way to deliver IPv4
// frames in package ether. This socket takes IPv4 only, and a BPF filter
// keeps every packet but DHCP replies crossing the WAN out of the process.
type transport struct {
	index int
	mac   net.HardwareAddr
	conn  *dhcpConn
	nc    *nclient4.Client
}

// dhcpConn is the client's net.PacketConn: reads through nclient4's raw UDP
// parser over rx; writes each message through tx with the message's ciaddr
// as the source (nclient4's say 0.0.0.0, and a kernel drops a unicast
// packet from 0.0.0.0, so renewals and releases to the server would be
// lost). It notes the socket's death: the kernel fails a packet socket's
// read when its interface goes down or away, and nclient4's reader then
// stops for good, so the role opens a new one.
type dhcpConn struct {
	net.PacketConn // nclient4's reader over rx
	rx             *rxConn
	tx             *ether.Conn
	dead, closed   atomic.Bool

	mu sync.Mutex
	// servers are the MAC addresses unicasts to each server go to: the
	// link-layer source of its ACK (RFC 2131 §4.4.5: renewals and
	// releases are unicast). A server not here gets broadcast frames.
	servers map[netip.Addr]net.HardwareAddr
}

// rxConn is the receiving socket as nclient4's parser reads it. It keeps
// the link-layer sources of the last messages it read, so that the client
// learns the MAC address each server answered from.
type rxConn struct {
	*packet.Conn
	mu      sync.Mutex
	sources [8]source // the last ones read, the oldest overwritten
	next    int
}

// source is where one message came from.
type source struct {
	xid dhcpv4.TransactionID
	ip  netip.Addr // the IPv4 source: the server, or the relay
	mac net.HardwareAddr
}

func (c *rxConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.Conn.ReadFrom(b)
	pa, ok := a.(*packet.Addr)
	if err != nil || !ok || n < 20 {
		return n, a, err
	}
	// The filter passes only UDP: the BOOTP transaction ID is 4 bytes
	// into the message, after the IP and UDP headers.
	if off := int(b[0]&0x0f)*4 + 8 + 4; n >= off+4 {
		c.mu.Lock()
		c.sources[c.next] = source{xid: dhcpv4.TransactionID(b[off : off+4]), ip: netip.AddrFrom4([4]byte(b[12:16])), mac: slices.Clone(pa.HardwareAddr)}
		c.next = (c.next + 1) % len(c.sources)
		c.mu.Unlock()
	}
	return n, a, err
}

// sourceOf is the MAC address the message xid of server came from: the
// newest from server's own address, else (a relayed answer) the newest;
// nil when none was read.
func (c *rxConn) sourceOf(xid dhcpv4.TransactionID, server netip.Addr) net.HardwareAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	var relayed net.HardwareAddr
	for i := range len(c.sources) {
		s := c.sources[(c.next-1-i+2*len(c.sources))%len(c.sources)]
		switch {
		case s.mac == nil || s.xid != xid:
		case s.ip == server:
			return s.mac
		case relayed == nil:
			relayed = s.mac
		}
	}
	return relayed
}

// unicastVia sends what goes to server to mac from now on (nil: broadcast).
func (t *transport) unicastVia(server netip.Addr, mac net.HardwareAddr) {
	t.conn.mu.Lock()
	defer t.conn.mu.Unlock()
	if mac == nil {
		delete(t.conn.servers, server)
	} else {
		t.conn.servers[server] = mac
	}
}

// serverMAC is the MAC address ack came from, nil if unknown.
func (t *transport) serverMAC(ack *dhcpv4.DHCPv4, server netip.Addr) net.HardwareAddr {
	return t.conn.rx.sourceOf(ack.TransactionID, server)
}

// macFor is the MAC address a datagram to ip goes to.
func (c *dhcpConn) macFor(ip netip.Addr) net.HardwareAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mac := c.servers[ip]; mac != nil {
		return mac
	}
	return ether.Broadcast
}

func (c *dhcpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	if err != nil && !c.closed.Load() {
		c.dead.Store(true)
	}
	return n, a, err
}

func (c *dhcpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var to netip.Addr
	dst, ok := addr.(*net.UDPAddr)
	if ok {
		to, ok = netip.AddrFromSlice(dst.IP.To4())
	}
	if !ok || len(b) < 16 {
		return 0, fmt.Errorf("DHCP client: cannot send %d bytes to %v", len(b), addr)
	}
	ciaddr, _ := netip.AddrFromSlice(b[12:16])
	src := netip.AddrPortFrom(ciaddr, nclient4.ClientPort)
	if err := c.tx.SendUDP(c.macFor(to), src, netip.AddrPortFrom(to, uint16(dst.Port)), b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *dhcpConn) Close() error {
	c.closed.Store(true)
	return errors.Join(c.rx.Close(), c.tx.Close())
}

// dhcpFilter passes unfragmented UDP to port 68 (offsets from the IP header:
// the socket is SOCK_DGRAM, without the link header).
var dhcpFilter = func() []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1}, // protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_UDP, SkipTrue: 6},
		bpf.LoadAbsolute{Off: 6, Size: 2}, // flags and fragment offset
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 4},
		bpf.LoadMemShift{Off: 0},          // X = header length
		bpf.LoadIndirect{Off: 2, Size: 2}, // UDP destination port
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: nclient4.ClientPort, SkipTrue: 1},
		bpf.RetConstant{Val: 1 << 16},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err) // a fixed program
	}
	return prog
}()

// openTransport opens the socket on the calling thread's namespace.
func openTransport(ifname string, l link, log *slog.Logger) (*transport, error) {
	if len(l.mac) != 6 {
		return nil, fmt.Errorf("DHCP client on %s: the interface has no Ethernet address", ifname)
	}
	ifc := &net.Interface{Index: l.index, Name: ifname, HardwareAddr: l.mac}
	rx, err := packet.Listen(ifc, packet.Datagram, unix.ETH_P_IP, &packet.Config{Filter: dhcpFilter})
	if err != nil {
		return nil, fmt.Errorf("DHCP client on %s: opening its socket: %w", ifname, err)
	}
	tx, err := ether.Open(l.index)
	if err != nil {
		_ = rx.Close()
		return nil, fmt.Errorf("DHCP client on %s: opening its socket: %w", ifname, err)
	}
	r := &rxConn{Conn: rx}
	conn := &dhcpConn{PacketConn: nclient4.NewBroadcastUDPConn(r, &net.UDPAddr{Port: nclient4.ClientPort}), rx: r, tx: tx,
		servers: map[netip.Addr]net.HardwareAddr{}}
	nc, err := nclient4.NewWithConn(conn, l.mac,
		nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3), nclient4.WithLogger(dhcpLog{log}))
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("DHCP client on %s: %w", ifname, err)
	}
	return &transport{index: l.index, mac: l.mac, conn: conn, nc: nc}, nil
}

func (t *transport) close() { _ = t.nc.Close() }

// release gives l back to its server (DHCPRELEASE, RFC 2131 §4.4.6).
func (t *transport) release(l *lease, log *slog.Logger) error {
	t.unicastVia(l.server, l.serverMAC)
	if err := t.nc.Release(&nclient4.Lease{ACK: l.ack}); err != nil {
		return err
	}
	log.Info("DHCP lease released", "addr", l.addr)
	return nil
}

// usable reports whether t is still the socket for the interface l.
func (t *transport) usable(l link) bool {
	return t.index == l.index && !t.conn.dead.Load()
}

// absentErr reports whether opening failed because the interface went away
// since it was listed.
func absentErr(err error) bool { return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) }

// dhcpLog sends nclient4's messages to the role's log at debug level.
type dhcpLog struct{ log *slog.Logger }

func (d dhcpLog) Printf(format string, v ...any) { d.log.Debug(fmt.Sprintf(format, v...)) }

func (d dhcpLog) PrintMessage(prefix string, m *dhcpv4.DHCPv4) {
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		d.log.Debug(prefix, "dhcp", m.Summary())
	}
}
