package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"gatewayd/ether"
)

// conn is the role's sockets: UDP 0.0.0.0:67 bound to the NIC, so broadcasts
// arrive (a socket bound to the alias would never see a DISCOVER), with
// IP_PKTINFO to learn each request's destination and to set each reply's
// source to the DHCP alias; and a packet socket on the NIC (package ether)
// for the replies unicast to a client that has no address yet, built as
// whole frames to chaddr, as ISC dhcpd and Kea do, so the role never
// writes the neighbour table, and for the ARP probes before an offer. The
// UDP socket is blocking and outside Go's poller (mmsg.go says why).
type conn struct {
	f       *os.File        // the UDP socket
	raw     syscall.RawConn // f's: batches of datagrams, its NIC
	closed  atomic.Bool     // set by close before it wakes a waiting read
	eth     *ether.Conn     // nil when the NIC has none (ethErr says why)
	ethErr  error
	ifname  string
	ifindex int // the NIC the sockets are bound to
}

// readBuffer is the socket receive buffer: room for a burst of requests
// while the handler waits on the lock, or the read loop lets them gather.
const readBuffer = 4 << 20

// errNoNIC means the interface does not exist (yet, or any more).
var errNoNIC = errors.New("no such interface")

// nicIndex asks the kernel, through the socket fd (so in its network
// namespace), for the index of the interface named name: one ioctl.
func nicIndex(fd int, name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return 0, fmt.Errorf("interface %s: %w", name, errNoNIC)
		}
		return 0, fmt.Errorf("looking up interface %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// openUDP opens the UDP socket 0.0.0.0:67 bound to the NIC of index, in
// blocking mode and outside Go's poller (mmsg.go says why): an os.File, so
// that the descriptor outlives the calls in progress. Its Close does not
// wait for them (the fd is blocking); it drops the file's reference, and
// the descriptor is closed (close(2)) when the last call in progress
// returns, so none of them reads or writes a number reused meanwhile.
func openUDP(index int) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	err = errors.Join(
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, index),
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1),
	)
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, readBuffer) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, readBuffer)
	}
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: serverPort})
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "dhcp"), nil
}

// lookupNIC is nicIndex through a socket of its own, in the network
// namespace of the calling goroutine.
func lookupNIC(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("looking up interface %s: %w", name, err)
	}
	defer unix.Close(fd)
	return nicIndex(fd, name)
}

// listen opens the sockets on ifname, bound to its current index (a NIC
// deleted and created again gets a new one: current says so). It must run
// in the NIC's network namespace; the sockets stay there.
func listen(ifname string) (*conn, error) {
	index, err := lookupNIC(ifname)
	if err != nil {
		return nil, fmt.Errorf("opening DHCP socket on %s: %w", ifname, err)
	}
	f, err := openUDP(index)
	if errors.Is(err, unix.ENODEV) {
		err = fmt.Errorf("interface %s: %w", ifname, errNoNIC) // gone since the lookup
	}
	if err != nil {
		return nil, fmt.Errorf("opening DHCP socket 0.0.0.0:67 on %s: %w", ifname, err)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening DHCP socket on %s: %w", ifname, err)
	}
	c := &conn{f: f, raw: raw, ifname: ifname, ifindex: index}
	if c.eth, err = ether.Open(index); err != nil {
		// Not Ethernet, say: replies that would go to chaddr are broadcast.
		c.ethErr = fmt.Errorf("opening a packet socket on %s: %w", ifname, err)
	}
	return c, nil
}

// current reports whether the NIC the sockets are bound to is still there
// under its name: false when it is gone or was created again (another
// index), which the sockets would never notice. One ioctl, no write.
func (c *conn) current() (bool, error) {
	var index int
	var ierr error
	if err := c.raw.Control(func(fd uintptr) { index, ierr = nicIndex(int(fd), c.ifname) }); err != nil {
		return false, fmt.Errorf("asking the DHCP socket about %s: %w", c.ifname, err)
	}
	if errors.Is(ierr, errNoNIC) {
		return false, nil
	}
	if ierr != nil {
		return false, ierr
	}
	return index == c.ifindex, nil
}

// batchSize is how many datagrams one recvmmsg or sendmmsg moves.
const batchSize = 32

// inPacket is one received datagram.
type inPacket struct {
	b   []byte
	src netip.AddrPort
	dst netip.Addr // invalid when the kernel did not say
}

// datagram is one reply ready to leave: from src (the alias) to dst; with
// mac, as a frame straight to that MAC address (sendFrame).
type datagram struct {
	b   []byte
	src netip.Addr
	dst netip.AddrPort
	mac net.HardwareAddr
	mt  uint8 // message type, for the counters
}

// sendFrame sends a datagram as a frame to its MAC address on the packet
// socket: Ethernet, IPv4 and UDP built in place, no neighbour entry.
func (c *conn) sendFrame(d datagram) error {
	if c.eth == nil {
		return c.ethErr
	}
	if err := c.eth.SendUDP(d.mac, netip.AddrPortFrom(d.src, serverPort), d.dst, d.b); err != nil {
		return fmt.Errorf("on %s: %w", c.ifname, err)
	}
	return nil
}

// close closes the sockets. A read waiting for a datagram is woken by a
// shutdown and returns net.ErrClosed; the file is closed once the calls
// in progress have returned.
func (c *conn) close() error {
	if c.eth != nil {
		c.eth.Close()
	}
	c.closed.Store(true)
	c.raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) })
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("closing DHCP socket on %s: %w", c.ifname, err)
	}
	return nil
}
