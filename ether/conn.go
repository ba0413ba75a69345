package ether

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Conn is an AF_PACKET socket on one Ethernet interface: it sends whole
// frames out of that interface and reads the ARP frames that arrive on it.
// Its methods are safe for concurrent use.
type Conn struct {
	f          *os.File
	raw        syscall.RawConn // f's, fetched once
	closed     chan struct{}
	closeOnce  sync.Once
	readerDone chan struct{}

	mu      sync.Mutex
	ifindex int
	mac     net.HardwareAddr // nil while bound to an interface that is not Ethernet
	waiters map[netip.Addr][]*waiter
}

// waiter is a probe waiting for a conflicting ARP packet about ip.
type waiter struct {
	ip netip.Addr
	ch chan ARP // buffered: the reader never blocks on a waiter
}

// Open opens a packet socket on the interface with index ifindex, in the
// network namespace of the calling goroutine's thread. The socket is made
// with protocol 0, which receives nothing, and bound to ARP on ifindex
// afterwards, so it never sees a frame from another interface.
func Open(ifindex int) (*Conn, error) {
	c, err := OpenUnbound()
	if err != nil {
		return nil, err
	}
	if err := c.Rebind(ifindex); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// OpenUnbound opens a packet socket bound to no interface yet, in the
// network namespace of the calling goroutine's thread: it sends and
// receives nothing until [Conn.Rebind] binds it, from any goroutine. It is
// for a NIC that does not exist yet: the socket must be made in the
// namespace now, by the goroutine that is in it, and bound when the NIC
// appears, by whichever goroutine notices.
func OpenUnbound() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "packet")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	c := &Conn{
		f:          f,
		raw:        raw,
		closed:     make(chan struct{}),
		readerDone: make(chan struct{}),
		waiters:    map[netip.Addr][]*waiter{},
	}
	go c.read()
	return c, nil
}

// Rebind binds the socket to ifindex, such as the new index of a NIC that
// was deleted and created again (the old binding then sends nothing), and
// reads the interface's MAC address again. It opens no socket, so it may be
// called from any goroutine.
func (c *Conn) Rebind(ifindex int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bind(ifindex)
}

// bind binds to ARP on ifindex and learns the interface's MAC address from
// the socket itself, which answers for its own namespace whatever thread
// asks. The caller holds c.mu.
func (c *Conn) bind(ifindex int) error {
	if ifindex <= 0 {
		// 0 would bind to every interface.
		return fmt.Errorf("binding a packet socket: interface index %d is not an interface", ifindex)
	}
	var sa unix.Sockaddr
	var serr error
	err := c.raw.Control(func(fd uintptr) {
		serr = unix.Bind(int(fd), &unix.SockaddrLinklayer{Protocol: htons(EtherTypeARP), Ifindex: ifindex})
		if serr == nil {
			sa, serr = unix.Getsockname(int(fd))
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("binding a packet socket to interface %d: %w", ifindex, err)
	}
	c.ifindex, c.mac = ifindex, nil
	ll, ok := sa.(*unix.SockaddrLinklayer)
	if !ok || ll.Hatype != unix.ARPHRD_ETHER || ll.Halen != 6 {
		return fmt.Errorf("interface %d is not an Ethernet interface", ifindex)
	}
	c.mac = net.HardwareAddr(ll.Addr[:6:6])
	return nil
}

// Index returns the interface index the socket is bound to, 0 while it is
// bound to none.
func (c *Conn) Index() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ifindex
}

// HardwareAddr returns the interface's MAC address as of the last bind.
func (c *Conn) HardwareAddr() net.HardwareAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mac
}

// source returns the MAC address frames are sent from.
func (c *Conn) source() (net.HardwareAddr, error) {
	c.mu.Lock()
	ifindex, mac := c.ifindex, c.mac
	c.mu.Unlock()
	switch {
	case ifindex == 0:
		return nil, ErrUnbound
	case mac == nil:
		return nil, fmt.Errorf("interface %d is not an Ethernet interface", ifindex)
	}
	return mac, nil
}

// Send sends one frame to dst with the given EtherType and payload, from
// the interface's MAC address. The frame goes out of the bound interface as
// it is: no neighbour lookup, no route. Frames shorter than the Ethernet
// minimum are padded with zeros.
func (c *Conn) Send(dst net.HardwareAddr, etherType uint16, payload []byte) error {
	if len(dst) != 6 {
		return fmt.Errorf("sending a frame: destination %q is not a MAC address", dst)
	}
	src, err := c.source()
	if err != nil {
		return err
	}
	b := make([]byte, headerLen, max(minFrameLen, headerLen+len(payload)))
	putHeader(b, dst, src, etherType)
	return c.write(pad(append(b, payload...)))
}

// pad pads a frame with zeros to the Ethernet minimum, which veth and some
// drivers do not do themselves.
func pad(frame []byte) []byte {
	for len(frame) < minFrameLen {
		frame = append(frame, 0)
	}
	return frame
}

// write sends a whole frame, or fails at once: it never waits for room in
// the socket's buffer. Frames queue there while the NIC cannot send (its
// carrier down, its queue full), and a caller such as the DHCP role's lease
// writer must not stall behind them; an ARP announcement is repeated and a
// DHCP client asks again, so a frame the kernel will not take is dropped
// with an error (EAGAIN, ENOBUFS).
func (c *Conn) write(frame []byte) error {
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		// A bound packet socket sends out of the interface it is bound to.
		_, werr = unix.Write(int(fd), frame)
		return true // never wait for the poller
	})
	if err = errors.Join(err, werr); err != nil {
		return fmt.Errorf("sending a frame on interface %d: %w", c.Index(), os.NewSyscallError("write", err))
	}
	return nil
}

// ErrUnbound means the socket is bound to no interface yet (OpenUnbound).
var ErrUnbound = errors.New("the packet socket is bound to no interface yet")

// Close closes the socket, stops the reader and wakes every probe (which
// then fails).
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.f.Close()
		<-c.readerDone
	})
	return err
}

// read hands every ARP packet that arrives to the probes it concerns,
// until the socket is closed.
func (c *Conn) read() {
	defer close(c.readerDone)
	buf := make([]byte, 256) // ARP frames are 60 bytes; longer ones are cut, harmlessly
	for {
		n, err := c.f.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			// ENETDOWN, once, when the link goes down: the socket reads
			// again when it is back up or bound anew.
			continue
		}
		c.dispatch(buf[:n])
	}
}

// dispatch wakes the probes that frame b conflicts with.
func (c *Conn) dispatch(b []byte) {
	p, err := parseARPFrame(b)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mac == nil {
		return
	}
	// A probe's own target is the only address a packet can conflict with
	// besides its sender IP.
	for _, ip := range []netip.Addr{p.SenderIP, p.TargetIP} {
		for _, w := range c.waiters[ip] {
			if p.Conflicts(w.ip, c.mac) {
				select {
				case w.ch <- p:
				default:
				}
			}
		}
		if p.SenderIP == p.TargetIP {
			break
		}
	}
}

// await registers a waiter for packets conflicting with ip.
func (c *Conn) await(ip netip.Addr) *waiter {
	w := &waiter{ip: ip, ch: make(chan ARP, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiters[ip] = append(c.waiters[ip], w)
	return w
}

// forget removes a waiter.
func (c *Conn) forget(w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.waiters[w.ip]
	for i, x := range list {
		if x == w {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.waiters, w.ip)
	} else {
		c.waiters[w.ip] = list
	}
}

// htons puts a 16-bit value in network byte order, as sockaddr_ll wants.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
