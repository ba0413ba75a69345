package dhcp

import (
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestSetLifecycle(t *testing.T) {
	n := newTestNet(t)
	c := newPeerClient(t, n, "client", "02:00:00:00:05:01")
	off := c.discover(t)
	req, _ := dhcpv4.NewRequestFromOffer(off, dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptHostName("box")))
	if _, _, err := c.mustReply(req, "255.255.255.255:67", dhcpv4.MessageTypeAck); err != nil {
		t.Fatal(err)
	}
	addr := off.YourIPAddr.String()

	// The same config again: nothing changes, not even the socket.
	conn := n.srv.conn
	n.set(netConfig())
	if n.srv.conn != conn {
		t.Error("Set with the same config reopened the socket")
	}

	// The pool changes: the lease stays, the new range serves.
	smaller := netConfig(func(c *Config) { c.Pools[0].Range.End = mustAddr("192.0.2.149") })
	n.set(smaller)
	if n.srv.conn != conn {
		t.Error("a pool change reopened the socket")
	}
	if _, ok := n.lease(addr); !ok {
		t.Fatalf("the lease of %s was lost on reconfigure", addr)
	}
	if got := n.srv.Status().Pools[0].Size; got != 50 {
		t.Errorf("pool size after reconfigure %d, want 50", got)
	}
	// The role keeps its own copy: the caller's later edits do not reach it.
	smaller.Pools[0].Range.End = mustAddr("192.0.2.199")
	if got := n.srv.Status().Pools[0].Range; got != "192.0.2.100-192.0.2.149" {
		t.Errorf("pool %s after the caller changed its Config, want 192.0.2.100-192.0.2.149", got)
	}

	// A config that cannot be applied is refused and the role keeps serving.
	err := n.gw.Do(func() error {
		return n.srv.Set(t.Context(), netConfig(func(c *Config) { c.Interface = "nope0" }))
	})
	if err == nil || !strings.Contains(err.Error(), "nope0") {
		t.Errorf("Set on a missing interface: %v, want an error naming nope0", err)
	}
	if st := n.srv.Status(); !st.Running || st.Interface != "eth1" || n.srv.conn != conn {
		t.Errorf("after a refused Set: running %v on %q", st.Running, st.Interface)
	}
	c.discover(t)

	// The alias moves to another box (the controller says nil): the role
	// stops, the leases stay, the names are withdrawn.
	n.set(nil)
	if st := n.srv.Status(); st.Running || st.Active != 1 {
		t.Errorf("after the alias moved away: running %v, %d active leases", st.Running, st.Active)
	}
	if n.names.get("box").IsValid() {
		t.Error("the name of a lease is still published after the role stopped")
	}
	d, _ := dhcpv4.NewDiscovery(c.mac, dhcpv4.WithBroadcast(true))
	if r, _, _ := c.exchange(d, "255.255.255.255:67", 500*time.Millisecond); r != nil {
		t.Errorf("a stopped role answered: %s", r.MessageType())
	}

	// Back: serving again, names republished.
	n.set(netConfig())
	if !n.srv.Status().Running || n.names.get("box").String() != addr {
		t.Errorf("after restart: running %v, box = %v", n.srv.Status().Running, n.names.get("box"))
	}
	c.discover(t)

	// No [dhcp] at all (nil again) stops it too.
	n.set(nil)
	if n.srv.Status().Running {
		t.Error("the role runs without a [dhcp] section")
	}
}

func TestOnlyTheDHCPAliasAnswers(t *testing.T) {
	n := newTestNet(t)
	ns := n.client("client", "02:00:00:00:06:01")
	ns.MustRun(t, "ip", "addr", "add", "192.0.2.51/24", "dev", "eth0")
	p, err := openPeer(ns, "0.0.0.0:68")
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	hw, _ := parseMACString("02:00:00:00:06:01")
	for _, dst := range []string{"192.0.2.3:67", "192.0.2.250:67"} {
		inf, _ := dhcpv4.NewInform(hw, ip("192.0.2.51"))
		if r, _, _ := p.exchange(inf, dst, 500*time.Millisecond); r != nil {
			t.Errorf("a request to %s (not the DHCP alias) was answered", dst)
		}
	}
	inf, _ := dhcpv4.NewInform(hw, ip("192.0.2.51"))
	if _, _, err := p.mustReply(inf, "192.0.2.2:67", dhcpv4.MessageTypeAck); err != nil {
		t.Error(err)
	}
}
