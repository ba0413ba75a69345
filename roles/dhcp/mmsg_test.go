package dhcp

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gatewayd/lab"
)

// A datagram longer than its buffer arrives cut (recvmmsg sets MSG_TRUNC in
// its header's flags): it is dropped, not parsed without its end.
func TestReaderDropsTruncated(t *testing.T) {
	r := newReader()
	fill := func(i int, n uint32, flags int32) {
		r.hdrs[i].Len = n
		r.hdrs[i].Hdr.Flags = flags
		r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		r.names[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{192, 0, 2, 7}, Port: 68 << 8}
		r.hdrs[i].Hdr.SetControllen(0)
	}
	fill(0, 300, 0)
	fill(1, uint32(len(r.bufs[1])), unix.MSG_TRUNC)
	fill(2, 300, unix.MSG_TRUNC|unix.MSG_CTRUNC)
	p, ok := r.packet(0)
	if !ok || len(p.b) != 300 || p.src != netip.MustParseAddrPort("192.0.2.7:68") {
		t.Errorf("a whole datagram: ok %v, %d bytes from %v", ok, len(p.b), p.src)
	}
	for _, i := range []int{1, 2} {
		if p, ok := r.packet(i); ok {
			t.Errorf("datagram %d with MSG_TRUNC kept: %d bytes", i, len(p.b))
		}
	}
}

// A read error that persists is logged once, not at every retry; its end
// once, with the count.
func TestReadFailureLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var f readFailure
	f.note(log, nil)
	for range 50 {
		f.note(log, errors.New("receiving on eth1: ENOBUFS"))
	}
	f.note(log, errors.New("receiving on eth1: EIO"))
	f.note(log, nil)
	f.note(log, nil)
	out := buf.String()
	if n := strings.Count(out, "reading the DHCP socket fails"); n != 2 {
		t.Errorf("2 errors logged %d times:\n%s", n, out)
	}
	if n := strings.Count(out, "works again"); n != 1 || !strings.Contains(out, "failed_reads=51") {
		t.Errorf("the recovery, once with the count:\n%s", out)
	}
}

// A send whose middle datagram the kernel refuses (UDP to port 0: EINVAL)
// sends the others, and the replies counted as sent are those that left.
func TestSendCountsWhatLeft(t *testing.T) {
	ns, err := lab.New(t).Namespace("send")
	if err != nil {
		t.Fatal(err)
	}
	var cn *conn
	var rx net.PacketConn
	err = ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			unix.Close(fd)
			return err
		}
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), "udp")
		raw, err := f.SyscallConn()
		if err != nil {
			return err
		}
		cn = &conn{f: f, raw: raw, ifname: "lo", ifindex: lo.Index}
		rx, err = net.ListenPacket("udp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.close()
	defer rx.Close()
	to := netip.MustParseAddrPort(rx.LocalAddr().String())
	lo := netip.MustParseAddr("127.0.0.1")
	ds := []datagram{
		{b: []byte("offer"), src: lo, dst: to, mt: offerType},
		{b: []byte("refused"), src: lo, dst: netip.AddrPortFrom(lo, 0), mt: nakType},
		{b: []byte("ack"), src: lo, dst: to, mt: ackType},
	}
	s := &Server{log: quietLog(), h: &handler{}}
	s.send(cn, ds, newSender())
	if got := [3]uint64{s.cnt.out[offerType].Load(), s.cnt.out[nakType].Load(), s.cnt.out[ackType].Load()}; got != [3]uint64{1, 0, 1} {
		t.Errorf("sent counted OFFER, NAK, ACK: %v, want [1 0 1]", got)
	}
	if got := s.cnt.sendErrors.Load(); got != 1 {
		t.Errorf("send errors %d, want 1", got)
	}
	rx.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	for _, want := range []string{"offer", "ack"} {
		n, _, err := rx.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("received %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// A send on a socket whose buffer is full returns at once: the replies
// the kernel does not take are dropped and counted, none is counted as
// sent. A datagram socket pair whose reader does not read stands in for
// a full send buffer (with no addresses: the pair is connected).
func TestSendDropsWhenFull(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	filled := false
	for range 100000 {
		if err := unix.Send(fds[0], make([]byte, 300), unix.MSG_DONTWAIT); err == unix.EAGAIN {
			filled = true
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !filled {
		t.Fatal("the send buffer never filled")
	}
	f := os.NewFile(uintptr(fds[0]), "pair")
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	cn := &conn{f: f, raw: raw, ifname: "pair"}
	defer cn.close()
	snd := newSender()
	for i := range snd.hdrs {
		snd.hdrs[i].Hdr.Namelen = 0
	}
	to := netip.MustParseAddrPort("192.0.2.100:68")
	src := netip.MustParseAddr("192.0.2.2")
	ds := []datagram{{b: []byte("offer"), src: src, dst: to, mt: offerType}, {b: []byte("ack"), src: src, dst: to, mt: ackType}}
	s := &Server{log: quietLog(), h: &handler{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.send(cn, ds, snd)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang, not a timing: the send blocks
		t.Fatal("a send on a full buffer blocked")
	}
	if got := s.cnt.sendErrors.Load(); got != 2 {
		t.Errorf("unsent counted %d, want 2", got)
	}
	if got := s.cnt.out[offerType].Load() + s.cnt.out[ackType].Load(); got != 0 {
		t.Errorf("%d replies counted as sent", got)
	}
}

// A failure that repeats is logged at most once a second, with what
// failed since the last line.
func TestFailureLogOncePerSecond(t *testing.T) {
	var l failureLog
	t0 := int64(1_700_000_000) * int64(time.Second)
	for _, tc := range []struct {
		n     int
		at    time.Duration
		total uint64
		ok    bool
	}{
		{1, 0, 1, true}, {2, 300 * time.Millisecond, 0, false}, {5, 999 * time.Millisecond, 0, false},
		{1, time.Second, 8, true}, {1, 1500 * time.Millisecond, 0, false}, {3, 5 * time.Second, 4, true},
	} {
		if total, ok := l.note(tc.n, t0+int64(tc.at)); total != tc.total || ok != tc.ok {
			t.Errorf("%d at %v: %d %v, want %d %v", tc.n, tc.at, total, ok, tc.total, tc.ok)
		}
	}
}
