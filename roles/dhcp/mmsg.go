package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Datagrams move in batches, recvmmsg and sendmmsg, through headers,
// addresses and control messages allocated once per reader or sender and
// reused: a lease storm moves tens of thousands of datagrams a second, and
// a general batch API (golang.org/x/net/ipv4) allocates its headers and
// an address per datagram on every call.
//
// The socket is blocking and kept out of Go's poller. In the poller, every
// datagram that arrives wakes the thread waiting there, even while the read
// loop lets requests gather (Server.serve reads at most every readEvery):
// a context switch per datagram, which costs more than the datagram. Out
// of it, the read loop takes what has gathered without waiting (one
// recvmmsg for a batch), and waits in recvmmsg only when nothing has.

// pktinfoSpace is the room one IP_PKTINFO control message takes.
var pktinfoSpace = unix.CmsgSpace(unix.SizeofInet4Pktinfo)

// reader reads datagrams in batches (recvmmsg).
type reader struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	oob   []byte
	bufs  [][]byte
	// truncated counts the datagrams of the last read that were longer
	// than their buffer, and so dropped.
	truncated int
}

func newReader() *reader {
	r := &reader{hdrs: make([]unix.Mmsghdr, batchSize), iovs: make([]unix.Iovec, batchSize),
		names: make([]unix.RawSockaddrInet4, batchSize), oob: make([]byte, batchSize*pktinfoSpace), bufs: make([][]byte, batchSize)}
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, 2048)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(len(r.bufs[i]))
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oob[i*pktinfoSpace]
	}
	return r
}

// read returns the next batch of datagrams, waiting for the first; their
// bytes are valid until the next call.
func (c *conn) read(r *reader, out []inPacket) ([]inPacket, error) {
	for i := range r.hdrs {
		h := &r.hdrs[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet4
		h.SetControllen(pktinfoSpace)
		h.Flags = 0
	}
	var n int
	var errno syscall.Errno
	err := c.raw.Read(func(fd uintptr) bool {
		hdrs, vlen := uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs))
		for {
			r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, hdrs, vlen, unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN && !c.closed.Load() {
				// Nothing has gathered: wait for the next datagram (close
				// wakes this with a shutdown).
				r1, _, e = unix.Syscall6(unix.SYS_RECVMMSG, fd, hdrs, vlen, unix.MSG_WAITFORONE, 0, 0)
			}
			if e == unix.EINTR {
				continue
			}
			n, errno = int(r1), e
			return true
		}
	})
	if c.closed.Load() || errors.Is(err, os.ErrClosed) {
		return out, net.ErrClosed
	}
	if err != nil {
		return out, fmt.Errorf("receiving on %s: %w", c.ifname, err)
	}
	if errno != 0 {
		return out, fmt.Errorf("receiving on %s: %w", c.ifname, errno)
	}
	r.truncated = 0
	for i := range n {
		if p, ok := r.packet(i); ok {
			out = append(out, p)
		} else {
			r.truncated++
		}
	}
	return out, nil
}

// packet is the i-th datagram of the last read; false when it was longer
// than its buffer (MSG_TRUNC): its end is missing, so it is not parsed.
func (r *reader) packet(i int) (inPacket, bool) {
	m := &r.hdrs[i]
	if m.Hdr.Flags&unix.MSG_TRUNC != 0 || int(m.Len) > len(r.bufs[i]) {
		return inPacket{}, false
	}
	p := inPacket{b: r.bufs[i][:m.Len]}
	if sa := &r.names[i]; m.Hdr.Namelen >= unix.SizeofSockaddrInet4 && sa.Family == unix.AF_INET {
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		p.src = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
	}
	p.dst = pktinfoDst(r.oob[i*pktinfoSpace : i*pktinfoSpace+min(int(m.Hdr.Controllen), pktinfoSpace)])
	return p, true
}

// pktinfoDst reads the destination address of the datagram from its
// IP_PKTINFO control message; invalid when there is none.
func pktinfoDst(oob []byte) netip.Addr {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			break
		}
		if h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && l >= unix.CmsgLen(unix.SizeofInet4Pktinfo) {
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return netip.AddrFrom4(pi.Addr)
		}
		oob = oob[min(len(oob), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return netip.Addr{}
}

// sender writes datagrams in batches (sendmmsg); each goroutine that sends
// has its own.
type sender struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	oob   []byte
	// The caller's lists of datagrams (Server.send, sendNow).
	ready, rest []datagram
}

func newSender() *sender {
	s := &sender{hdrs: make([]unix.Mmsghdr, batchSize), iovs: make([]unix.Iovec, batchSize),
		names: make([]unix.RawSockaddrInet4, batchSize), oob: make([]byte, batchSize*pktinfoSpace)}
	for i := range s.hdrs {
		h := &s.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Namelen = unix.SizeofSockaddrInet4
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
		h.Control = &s.oob[i*pktinfoSpace]
		h.SetControllen(pktinfoSpace)
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&s.oob[i*pktinfoSpace]))
		cm.Level, cm.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		cm.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	}
	return s
}

// write sends datagrams out of the NIC, each from its src (IP_PKTINFO), in
// batches, and never waits: it runs on the lease log's writer (flush), so
// waiting for room in a full send buffer would hold up every ACK behind
// it. A full buffer (EAGAIN, ENOBUFS) drops the rest, as a full network
// would and as Kea and dnsmasq do (the client asks again), where trying
// each of them would only fail again; a datagram the kernel refuses for
// its own destination is skipped and the rest go on. write returns how
// many were sent, moved in their order to the front of ds (so the caller
// counts those, not the dropped), and the first error.
func (c *conn) write(s *sender, ds []datagram) (int, error) {
	all := ds
	sent := 0
	var first error
	for len(ds) > 0 {
		k := min(len(ds), len(s.hdrs))
		for i, d := range ds[:k] {
			s.iovs[i].Base = &d.b[0]
			s.iovs[i].SetLen(len(d.b))
			s.names[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: d.dst.Addr().As4()}
			binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s.names[i].Port))[:], d.dst.Port())
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&s.oob[i*pktinfoSpace+unix.CmsgLen(0)]))
			*pi = unix.Inet4Pktinfo{Ifindex: int32(c.ifindex), Spec_dst: d.src.As4()}
		}
		var n int
		var errno syscall.Errno
		err := c.raw.Write(func(fd uintptr) bool {
			hdrs := uintptr(unsafe.Pointer(&s.hdrs[0]))
			for {
				r1, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, hdrs, uintptr(k), unix.MSG_DONTWAIT, 0, 0)
				if e == unix.EINTR {
					continue
				}
				n, errno = int(r1), e
				return true
			}
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err != nil {
			if first == nil {
				first = fmt.Errorf("sending to %s on %s: %w", ds[0].dst, c.ifname, err)
			}
			if errno == unix.EAGAIN || errno == unix.ENOBUFS {
				break // the send buffer is full: the rest are dropped
			}
			n = 1 // skip the datagram the kernel refused
		} else {
			copy(all[sent:], ds[:n])
			sent += n
		}
		ds = ds[n:]
	}
	return sent, first
}
