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
