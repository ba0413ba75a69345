package dhcp

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"gatewayd/lab"
)

// TestNameExpiryQueue: names come off in expiry order; a renewed or
// released lease's old expiry withdraws nothing.
func TestNameExpiryQueue(t *testing.T) {
	R := dhcpv4.MessageTypeRequest
	hs := newHarness(t, testConfig())
	a := hs.h.alloc
	t0 := hs.now.Unix()
	hs.send(msg(R, macA, wantIP("192.0.2.100"), host("a"))()) // ends t0+3600
	hs.now = hs.now.Add(10 * time.Minute)
	hs.send(msg(R, macB, wantIP("192.0.2.101"), host("b"))()) // ends t0+4200
	hs.send(msg(R, macC, wantIP("192.0.2.102"), host("c"))())
	hs.send(msg(dhcpv4.MessageTypeRelease, macC, ci("192.0.2.102"), sid(srv))())
	if at, ok := a.nextNameExpiry(); !ok || at != t0+3600 {
		t.Fatalf("next name expiry %d %v, want %d", at, ok, t0+3600)
	}
	hs.now = hs.now.Add(20 * time.Minute)
	hs.send(msg(R, macA, ci("192.0.2.100"))()) // a renews: ends t0+1800+3600
	if got := a.expireNames(t0 + 3600); len(got) != 0 {
		t.Errorf("a renewed lease's old expiry withdrew %v", got)
	}
	if got := a.expireNames(t0 + 4200); len(got) != 1 || got[0] != wd("b", "192.0.2.101") {
		t.Errorf("at b's end: %v", got)
	}
	if got := a.expireNames(t0 + 5400); len(got) != 1 || got[0] != wd("a", "192.0.2.100") {
		t.Errorf("at a's renewed end: %v", got)
	}
	if _, ok := a.nextNameExpiry(); ok {
		t.Error("entries left in the queue")
	}
	if names := a.sweep(t0+9000, (t0+9000)*1e9); len(names) != 0 {
		t.Errorf("the sweep withdrew names again: %v", names)
	}
}

// TestNameEndsWithTheLease: with the sweep an hour away, a short lease's
// name is withdrawn when the lease ends.
func TestNameEndsWithTheLease(t *testing.T) {
	n := newTestNet(t)
	n.sweepEvery = time.Hour
	n.cfg = netConfig(func(c *Config) {
		p := &c.Pools[0]
		p.LeaseTime, p.RenewTime, p.RebindTime = 2*time.Second, time.Second, 1500*time.Millisecond
	})
	n.restart()
	c := newPeerClient(t, n, "client", "02:00:00:00:10:01")
	off := c.discover(t)
	req, _ := dhcpv4.NewRequestFromOffer(off, dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptHostName("brief")))
	if _, _, err := c.mustReply(req, "255.255.255.255:67", dhcpv4.MessageTypeAck); err != nil {
		t.Fatal(err)
	}
	if got := n.names.get("brief"); got.String() != off.YourIPAddr.String() {
		t.Fatalf("name brief published as %v", got)
	}
	lab.Eventually(t, 10*time.Second, func() error {
		if got := n.names.get("brief"); got.IsValid() {
			return fmt.Errorf("name brief still published as %v", got)
		}
		return nil
	})
	if l, ok := n.lease(off.YourIPAddr.String()); ok {
		t.Errorf("the lease is still live: %+v", l)
	}
}

// callCount counts the calls made to Names.
type callCount struct{ n atomic.Int32 }

func (c *callCount) PublishLease(string, netip.Addr)  { c.n.Add(1) }
func (c *callCount) WithdrawLease(string, netip.Addr) { c.n.Add(1) }

// TestCloseStopsEverything: Close returns once the role's goroutines (read
// loop, sweeper) have returned, and a sweep or name expiry that comes
// after it (a sweeper that waited for the lock) changes nothing and calls
// nothing.
func TestCloseStopsEverything(t *testing.T) {
	n := newTestNet(t)
	c := newPeerClient(t, n, "client", "02:00:00:00:10:02")
	off := c.discover(t)
	req, _ := dhcpv4.NewRequestFromOffer(off, dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptHostName("brief")))
	if _, _, err := c.mustReply(req, "255.255.255.255:67", dhcpv4.MessageTypeAck); err != nil {
		t.Fatal(err)
	}
	s := n.srv
	if got := s.live.Load(); got < 2 {
		t.Fatalf("%d goroutines while serving, want the read loop and the sweeper", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.live.Load(); got != 0 {
		t.Fatalf("%d goroutines of the role still run after Close", got)
	}
	calls := &callCount{}
	s.names = calls
	later := time.Now().Add(24 * time.Hour)
	s.now = func() time.Time { return later }
	s.sweep()
	s.expireNames()
	if got := calls.n.Load(); got != 0 {
		t.Errorf("%d calls to Names after Close", got)
	}
	if b := s.h.alloc.byAddr[addrU32(mustAddr(off.YourIPAddr.String()))]; b == nil || b.state != bindActive {
		t.Errorf("a sweep after Close changed the lease: %+v", b)
	}
}
