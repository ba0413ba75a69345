package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"gatewayd/lab"
)

// TestUnicastRepliesLeaveTheNeighbourTableAlone sends 3,000 DISCOVERs from
// distinct MACs against a /16 pool: every OFFER is unicast to its chaddr,
// yet the gateway's neighbour table gains no entry, a host that holds an
// address without a lease keeps its entry when a DISCOVER names that
// address in option 50, and a new neighbour resolves during the burst.
func TestUnicastRepliesLeaveTheNeighbourTableAlone(t *testing.T) {
	n := newTestNet(t)
	n.gw.MustRun(t, "ip", "addr", "add", "10.20.0.2/16", "dev", "eth1", "label", "eth1:9")
	n.cfg = netConfig(func(c *Config) {
		c.Server = mustPrefix("10.20.0.2/16")
		c.Static = nil
		c.Pools = []Pool{{
			Range: span("10.20.1.0", "10.20.255.250"), Subnet: mustPrefix("10.20.0.0/16"),
			LeaseTime: time.Hour, RenewTime: 30 * time.Minute, RebindTime: 50 * time.Minute,
		}}
	})
	n.set(n.cfg)
	// A host on the first pool address that the server knows nothing of,
	// and a host the gateway has never talked to.
	squat := n.client("squatter", "02:00:00:00:0a:01")
	squat.MustRun(t, "ip", "addr", "add", "10.20.1.0/16", "dev", "eth0")
	newbie := n.client("newbie", "02:00:00:00:0a:02")
	newbie.MustRun(t, "ip", "addr", "add", "10.20.0.77/16", "dev", "eth0")
	if err := n.gw.Ping(t.Context(), mustAddr("10.20.1.0")); err != nil {
		t.Fatal(err)
	}
	before := neighbours(t, n.gw)
	if before["10.20.1.0"] != "02:00:00:00:0a:01" {
		t.Fatalf("no neighbour entry for the squatter: %v", before)
	}

	p := newPeerClient(t, n, "burst", "02:00:00:00:0a:03")
	const clients = 3000
	sent := make(chan error, 1)
	go func() {
		for i := range clients {
			mods := []dhcpv4.Modifier{dhcpv4.WithHwAddr(net.HardwareAddr{0x02, 0xbb, 0, byte(i >> 16), byte(i >> 8), byte(i)}),
				dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
				dhcpv4.WithTransactionID(dhcpv4.TransactionID{0xbb, byte(i >> 16), byte(i >> 8), byte(i)})}
			if i == 0 {
				mods = append(mods, wantIP("10.20.1.0"))
			}
			d, _ := dhcpv4.New(mods...)
			if _, err := p.conn.WriteToUDPAddrPort(d.ToBytes(), netip.MustParseAddrPort("255.255.255.255:67")); err != nil {
				sent <- err
				return
			}
			if i%10 == 9 {
				// Spread the burst, so the ping below runs inside it.
				time.Sleep(time.Millisecond)
			}
		}
		sent <- nil
	}()
	offers := func() uint64 { return n.srv.Status().Counters.Out["offer"] }
	lab.Eventually(t, 30*time.Second, func() error {
		if o := offers(); o < clients/3 {
			return fmt.Errorf("%d offers", o)
		}
		return nil
	})
	during := offers()
	if err := n.gw.Ping(t.Context(), mustAddr("10.20.0.77")); err != nil {
		t.Errorf("a new neighbour does not resolve during the burst: %v", err)
	}
	t.Logf("pinged a new neighbour between offers %d and %d of %d", during, offers(), clients)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 30*time.Second, func() error {
		if o := offers(); o < clients {
			return fmt.Errorf("%d offers of %d", o, clients)
		}
		return nil
	})
	st := n.srv.Status()
	if st.Counters.SendErrors != 0 || st.Offers < clients {
		t.Errorf("send errors %d, held offers %d", st.Counters.SendErrors, st.Offers)
	}
	after := neighbours(t, n.gw)
	for addr, mac := range after {
		if _, ok := before[addr]; !ok && addr != "10.20.0.77" {
			t.Errorf("a neighbour entry appeared: %s at %s", addr, mac)
		}
	}
	if after["10.20.1.0"] != "02:00:00:00:0a:01" {
		t.Errorf("the squatter's neighbour entry is now %q", after["10.20.1.0"])
	}
	if len(after) > len(before)+1 {
		t.Errorf("%d neighbour entries, %d before", len(after), len(before))
	}
}

// neighbours lists the IPv4 neighbour entries of eth1 in ns: address →
// MAC ("" for an entry without one, such as FAILED).
func neighbours(t *testing.T, ns *lab.Namespace) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(ns.MustRun(t, "ip", "-4", "neigh", "show", "dev", "eth1"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		out[f[0]] = ""
		for i := 1; i+1 < len(f); i++ {
			if f[i] == "lladdr" {
				out[f[0]] = f[i+1]
			}
		}
	}
	return out
}
