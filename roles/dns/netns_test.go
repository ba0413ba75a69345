package dns

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"gatewayd/lab"
)

// TestSocketsStayInNamespace captures a lab namespace from a Do thread and
// checks, many times over, that every socket and every fresh thread is in
// it. A UDP connect sends nothing, and its local address shows which
// namespace routed it: 10.99.0.1 only exists in the lab.
func TestSocketsStayInNamespace(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	a, err := l.Namespace("a")
	must(t, err)
	b, err := l.Namespace("b")
	must(t, err)
	must(t, l.Link(a, "veth0", b, "veth0"))
	must(t, a.Addr("veth0", "10.99.0.1/24"))
	var nsIno uint64
	for i := range 50 {
		var sock *sockets
		must(t, a.Do(func() error {
			var err error
			if nsIno, err = nsInode("/proc/thread-self/ns/net"); err != nil {
				return err
			}
			sock, err = captureSockets()
			return err
		}))
		if !sock.isolated() {
			t.Fatalf("try %d: captured from a lab namespace but not isolated", i)
		}
		c, err := sock.dialUDP(context.Background(), "10.99.0.2:9")
		must(t, err)
		local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
		c.Close()
		if local != netip.MustParseAddr("10.99.0.1") {
			t.Fatalf("try %d: the UDP socket was routed from %s: not in the lab namespace", i, local)
		}
		var ino uint64
		must(t, sock.fresh(func() { ino, err = nsInode("/proc/thread-self/ns/net") }))
		must(t, err)
		if ino != nsIno {
			t.Fatalf("try %d: a fresh thread is in namespace %d, want %d", i, ino, nsIno)
		}
		sock.close()
	}
}
