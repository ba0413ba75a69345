package router

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// transport is the DHCP client's socket on one interface, by index. It is a
// packet socket: a lease is asked for before the interface has an address,
// and packet sockets see the replies before the firewall does, so no rule
// has to let DHCP in. A BPF filter keeps every other packet crossing the WAN
// out of the process.
type transport struct {
	index int
	mac   net.HardwareAddr
	conn  *dhcpConn
	nc    *nclient4.Client
}

// dhcpConn is the client's net.PacketConn: reads through nclient4's raw UDP
// parser; writes its own IPv4 and UDP headers with the message's ciaddr as
// the source (nclient4's always say 0.0.0.0, and a kernel drops a unicast
// packet from 0.0.0.0, so renewals and releases to the server would be
// lost). It notes the socket's death: the kernel fails a packet socket's
// read when its interface goes down or away, and nclient4's reader then
// stops for good, so the role opens a new one.
type dhcpConn struct {
	net.PacketConn // nclient4's reader over raw
	raw            *packet.Conn
	dead, closed   atomic.Bool
}

func (c *dhcpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	if err != nil && !c.closed.Load() {
		c.dead.Store(true)
	}
	return n, a, err
}

func (c *dhcpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	dst, ok := addr.(*net.UDPAddr)
	if !ok || dst.IP.To4() == nil || len(b) < 16 {
		return 0, fmt.Errorf("DHCP client: cannot send %d bytes to %v", len(b), addr)
	}
	pkt := udp4(b[12:16], dst.IP.To4(), nclient4.ClientPort, dst.Port, b) // b[12:16] is ciaddr
	if _, err := c.raw.WriteTo(pkt, &packet.Addr{HardwareAddr: nclient4.BroadcastMac}); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *dhcpConn) Close() error {
	c.closed.Store(true)
	return c.raw.Close()
}

// udp4 is payload in a UDP datagram in an IPv4 packet, checksums filled in.
func udp4(src, dst net.IP, sport, dport int, payload []byte) []byte {
	const ipLen, udpLen = 20, 8
	p := make([]byte, ipLen+udpLen+len(payload))
	ip, udp := p[:ipLen], p[ipLen:]
	ip[0] = 0x45 // version 4, 5 words of header
	binary.BigEndian.PutUint16(ip[2:], uint16(len(p)))
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_UDP
	copy(ip[12:16], src)
	copy(ip[16:20], dst)
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(0, ip))
	binary.BigEndian.PutUint16(udp[0:], uint16(sport))
	binary.BigEndian.PutUint16(udp[2:], uint16(dport))
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+len(payload)))
	copy(udp[udpLen:], payload)
	pseudo := make([]byte, 12)
	copy(pseudo[0:4], src)
	copy(pseudo[4:8], dst)
	pseudo[9] = unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(udp)))
	sum := ^onesSum(onesSum(0, pseudo), udp)
	if sum == 0 {
		sum = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return p
}

// onesSum adds b to sum in 16-bit one's complement (RFC 1071).
func onesSum(sum uint16, b []byte) uint16 {
	s := uint32(sum)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
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
	raw, err := packet.Listen(ifc, packet.Datagram, unix.ETH_P_IP, &packet.Config{Filter: dhcpFilter})
	if err != nil {
		return nil, fmt.Errorf("DHCP client on %s: opening its socket: %w", ifname, err)
	}
	conn := &dhcpConn{PacketConn: nclient4.NewBroadcastUDPConn(raw, &net.UDPAddr{Port: nclient4.ClientPort}), raw: raw}
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
