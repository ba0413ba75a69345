package dhcp

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"gatewayd/lab"
)

func TestStaticLease(t *testing.T) {
	n := newTestNet(t, "udhcpc")
	c := n.client("static", macS)
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	c.MustRun(t, "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", clientScript(t, dir, env), "-t", "5", "-T", "1", "-O", "hostname")
	e := envOf(t, env, "bound")
	if e["ip"] != "192.0.2.10" || e["hostname"] != "printer" || e["router"] != "192.0.2.1" {
		t.Errorf("static client got ip=%s hostname=%s router=%s", e["ip"], e["hostname"], e["router"])
	}
	if got := n.names.get("printer"); got.String() != "192.0.2.10" {
		t.Errorf("printer published as %v", got)
	}
}

func TestRenewAfterRestart(t *testing.T) {
	n := newTestNet(t, "udhcpc")
	c := n.client("renew", "02:00:00:00:01:04")
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	// Stay running: SIGUSR1 makes udhcpc renew.
	cmd, err := c.Start(t.Context(), "udhcpc", "-f", "-i", "eth0", "-s", clientScript(t, dir, env), "-t", "5", "-T", "1", "-x", "hostname:kept")
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	lab.Eventually(t, 10*time.Second, func() error {
		if _, ok := n.lease("192.0.2.100"); !ok {
			return fmt.Errorf("no lease yet")
		}
		addr = "192.0.2.100"
		return nil
	})
	// A server that lost its lease log would give .100 to the next client;
	// a restarted one must know .100 is taken.
	n.restart()
	if l, ok := n.lease(addr); !ok || l.MAC != "02:00:00:00:01:04" {
		t.Fatalf("lease of %s not recovered from the log: %+v", addr, l)
	}
	if got := n.names.get("kept"); got.String() != addr {
		t.Errorf("name not republished on start: %v", got)
	}
	other := newPeerClient(t, n, "other", "02:00:00:00:01:05")
	if off := other.discover(t); off.YourIPAddr.String() == addr {
		t.Errorf("after restart the server offered %s, leased to the renewing client, to another", addr)
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	lab.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(n.lab.Output(cmd), "lease of "+addr+" obtained") || strings.Count(n.lab.Output(cmd), "obtained") < 2 {
			return fmt.Errorf("no renewal yet:\n%s", n.lab.Output(cmd))
		}
		return nil
	})
	lab.Eventually(t, 5*time.Second, func() error {
		e, err := readEnv(env, "renew")
		if err == nil && e["ip"] != addr {
			t.Fatalf("renewed to %s, want %s", e["ip"], addr)
		}
		return err
	})
	if got := n.srv.Status().Counters.Out["ack"]; got < 1 {
		t.Errorf("the restarted server sent %d ACKs", got)
	}
}

// peerClient is a hand-made client on the wire.
type peerClient struct {
	*peer
	mac []byte
}

func newPeerClient(t *testing.T, n *testNet, name, mac string) *peerClient {
	t.Helper()
	ns := n.client(name, mac)
	p, err := openPeer(ns, "0.0.0.0:68")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	hw, _ := parseMACString(mac)
	return &peerClient{peer: p, mac: hw}
}

func parseMACString(s string) ([]byte, error) {
	b, err := parseColonHex(s)
	return b, err
}

func (c *peerClient) discover(t *testing.T) *dhcpv4.DHCPv4 {
	t.Helper()
	d, _ := dhcpv4.NewDiscovery(c.mac, dhcpv4.WithBroadcast(true))
	r, _, err := c.mustReply(d, "255.255.255.255:67", dhcpv4.MessageTypeOffer)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecline(t *testing.T) {
	n := newTestNet(t, "dhcpcd")
	// A host squats on 192.0.2.100, the first address the server offers.
	squat := n.client("squatter", "02:00:00:00:02:01")
	squat.MustRun(t, "ip", "addr", "add", "192.0.2.100/24", "dev", "eth0")
	c := n.client("decliner", "02:00:00:00:02:02")
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	// dhcpcd ARP-probes the offered address, finds the squatter, DECLINEs
	// it and starts again.
	out := runDhcpcd(t, c, "-c", clientScript(t, dir, env), "eth0")
	t.Logf("dhcpcd:\n%s", out)
	e := envOf(t, env, "BOUND")
	if e["new_ip_address"] == "192.0.2.100" || !inPool(e["new_ip_address"]) {
		t.Errorf("dhcpcd bound %s", e["new_ip_address"])
	}
	st := n.srv.Status()
	if st.Counters.Declines != 1 || st.Declined != 1 {
		t.Errorf("declines %d, declined addresses %d; want 1 and 1", st.Counters.Declines, st.Declined)
	}
	if l, ok := n.lease("192.0.2.100"); !ok || l.State != StateDeclined {
		t.Errorf("192.0.2.100 is %+v, want declined", l)
	}
	// The quarantine survives a restart.
	n.restart()
	if l, ok := n.lease("192.0.2.100"); !ok || l.State != StateDeclined {
		t.Errorf("after restart 192.0.2.100 is %+v, want declined", l)
	}
}

func TestInform(t *testing.T) {
	n := newTestNet(t)
	ns := n.client("informer", "02:00:00:00:03:01")
	ns.MustRun(t, "ip", "addr", "add", "192.0.2.50/24", "dev", "eth0")
	p, err := openPeer(ns, "0.0.0.0:68")
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	hw, _ := parseMACString("02:00:00:00:03:01")
	inf, _ := dhcpv4.NewInform(hw, ip("192.0.2.50"))
	r, from, err := p.mustReply(inf, "192.0.2.2:67", dhcpv4.MessageTypeAck)
	if err != nil {
		t.Fatal(err)
	}
	if from.String() != "192.0.2.2:67" {
		t.Errorf("INFORM answered from %s, want the DHCP alias", from)
	}
	if r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || !r.YourIPAddr.IsUnspecified() || !r.ClientIPAddr.Equal(ip("192.0.2.50")) {
		t.Errorf("INFORM reply has a lease: %s", r.Summary())
	}
	if r.Router()[0].String() != "192.0.2.1" || r.DNS()[0].String() != "192.0.2.3" || r.DomainName() != "lan.test" {
		t.Errorf("INFORM options: %s", r.Summary())
	}
	if len(n.srv.Leases()) != 0 {
		t.Errorf("INFORM made a lease: %+v", n.srv.Leases())
	}
}

func TestRelay(t *testing.T) {
	n := newTestNet(t)
	// The relay is on the wire at 192.0.2.60 and serves 198.51.100.0/24,
	// where it is 198.51.100.1 (giaddr).
	relay := n.client("relay", "02:00:00:00:04:01")
	relay.MustRun(t, "ip", "addr", "add", "192.0.2.60/24", "dev", "eth0")
	relay.MustRun(t, "ip", "addr", "add", "198.51.100.1/24", "dev", "lo")
	n.gw.MustRun(t, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.60")
	p, err := openPeer(relay, "198.51.100.1:67")
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	agent := dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("port7")))
	hw, _ := parseMACString("02:00:00:00:04:02")
	d, _ := dhcpv4.NewDiscovery(hw, dhcpv4.WithRelay(ip("198.51.100.1")), dhcpv4.WithOption(agent))
	off, from, err := p.mustReply(d, "192.0.2.2:67", dhcpv4.MessageTypeOffer)
	if err != nil {
		t.Fatal(err)
	}
	if from.String() != "192.0.2.2:67" {
		t.Errorf("relay reply from %s, want 192.0.2.2:67", from)
	}
	yi := off.YourIPAddr.String()
	if !strings.HasPrefix(yi, "198.51.100.") || off.Router()[0].String() != "198.51.100.1" {
		t.Errorf("relayed offer %s router %v, want the relayed pool", yi, off.Router())
	}
	if !bytes.Equal(off.Options.Get(dhcpv4.OptionRelayAgentInformation), agent.Value.ToBytes()) {
		t.Errorf("option 82 not echoed: %x", off.Options.Get(dhcpv4.OptionRelayAgentInformation))
	}
	req, _ := dhcpv4.NewRequestFromOffer(off, dhcpv4.WithRelay(ip("198.51.100.1")), dhcpv4.WithOption(agent))
	if _, _, err := p.mustReply(req, "192.0.2.2:67", dhcpv4.MessageTypeAck); err != nil {
		t.Fatal(err)
	}
	if l, ok := n.lease(yi); !ok || l.MAC != "02:00:00:00:04:02" {
		t.Errorf("relayed lease %+v", l)
	}
}

func TestProbeBeforeOffer(t *testing.T) {
	n := newTestNet(t)
	n.cfg = netConfig(func(c *Config) { c.ProbeBeforeOffer = true })
	n.set(n.cfg)
	squat := n.client("squatter", "02:00:00:00:07:01")
	squat.MustRun(t, "ip", "addr", "add", "192.0.2.100/24", "dev", "eth0")
	c := newPeerClient(t, n, "client", "02:00:00:00:07:02")
	t0 := time.Now()
	off := c.discover(t)
	t.Logf("offer after %v", time.Since(t0))
	if got := off.YourIPAddr.String(); got != "192.0.2.101" {
		t.Errorf("offered %s, want 192.0.2.101 (192.0.2.100 answers ARP)", got)
	}
	st := n.srv.Status()
	if st.Counters.Conflicts != 1 || st.Declined != 1 {
		t.Errorf("conflicts %d, quarantined %d; want 1 and 1", st.Counters.Conflicts, st.Declined)
	}
	// Turning it off stops the probes; the packet socket, which also
	// carries the unicast replies, stays.
	cn := n.srv.conn
	n.set(netConfig())
	n.srv.mu.Lock()
	probing, same := n.srv.h.probe, n.srv.conn == cn
	n.srv.mu.Unlock()
	if probing || !same {
		t.Errorf("probe_before_offer off: still probing %v, same sockets %v", probing, same)
	}
}

// TestRenewWithoutLeaseLog: a new server that never saw the lease (an empty
// state directory: the role moved without its leases, or a first start in
// place of another server) ACKs a renewal of a free in-pool address.
func TestRenewWithoutLeaseLog(t *testing.T) {
	n := newTestNet(t, "udhcpc")
	c := n.client("renew", "02:00:00:00:08:01")
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	cmd, err := c.Start(t.Context(), "udhcpc", "-f", "-i", "eth0", "-s", clientScript(t, dir, env), "-t", "5", "-T", "1")
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	lab.Eventually(t, 10*time.Second, func() error {
		e, err := readEnv(env, "bound")
		if err == nil {
			addr = e["ip"]
		}
		return err
	})
	if err := n.srv.Close(); err != nil {
		t.Fatal(err)
	}
	n.dir = t.TempDir()
	n.start()
	if len(n.srv.Leases()) != 0 {
		t.Fatal("the new server has leases")
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	lab.Eventually(t, 10*time.Second, func() error {
		if _, ok := n.lease(addr); !ok {
			return fmt.Errorf("%s not leased yet", addr)
		}
		return nil
	})
	// The lease is stored before its ACK leaves, and the ACK is counted
	// when it is sent: wait for the count.
	lab.Eventually(t, 10*time.Second, func() error {
		if st := n.srv.Status(); st.Counters.Naks != 0 || st.Counters.Out["ack"] != 1 {
			return fmt.Errorf("the new server sent %d NAKs and %d ACKs, want 0 and 1", st.Counters.Naks, st.Counters.Out["ack"])
		}
		return nil
	})
}
