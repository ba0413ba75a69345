package dhcp

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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
