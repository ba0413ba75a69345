package dhcp

import (
	"net/netip"
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
