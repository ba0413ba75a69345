package dhcp

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// logHarness is a harness whose handler logs into records, at debug, on
// a limiter clock the test moves.
func logHarness(t *testing.T, c *Config) (*harness, *records, *time.Time) {
	hs := newHarness(t, c)
	rec := &records{}
	clock := hs.now
	hs.h.log = slog.New(rec)
	hs.h.logs = newLogLimit()
	hs.h.logs.now = func() time.Time { return clock }
	return hs, rec, &clock
}

// want checks that exactly n records with msg exist and that the last
// has the keys and values in kv.
func want(t *testing.T, rec *records, msg string, n int, kv ...string) {
	t.Helper()
	got := rec.find(msg)
	if len(got) != n {
		t.Errorf("%d %q lines, want %d:\n%s", len(got), msg, n, rec)
		return
	}
	if n == 0 {
		return
	}
	last := got[n-1]
	for i := 0; i+1 < len(kv); i += 2 {
		if last[kv[i]] != kv[i+1] {
			t.Errorf("%q line has %s=%q, want %q: %v", msg, kv[i], last[kv[i]], kv[i+1], last)
		}
	}
}

func TestDecisionLog(t *testing.T) {
	R := dhcpv4.MessageTypeRequest
	hs, rec, _ := logHarness(t, testConfig())

	out := hs.send(msg(R, macA, wantIP("192.0.2.100"), host("pc"))())
	hs.h.logAck(&out.outcome) // the server logs it once the lease is on disk
	want(t, rec, "DHCPACK", 1, "level", "INFO", "mac", macA, "addr", "192.0.2.100", "hostname", "pc", "lease", "1h0m0s")
	if _, relayed := rec.find("DHCPACK")[0]["relay"]; relayed {
		t.Error("an ACK on the wire names a relay")
	}
	out = hs.send(msg(R, macB, gi("198.51.100.1"), wantIP("198.51.100.10"))())
	hs.h.logAck(&out.outcome)
	want(t, rec, "DHCPACK", 2, "mac", macB, "addr", "198.51.100.10", "relay", "198.51.100.1")

	hs.send(msg(R, macC, wantIP("10.9.9.9"))())
	want(t, rec, "DHCPNAK", 1, "level", "INFO", "mac", macC, "addr", "10.9.9.9", "reason", "10.9.9.9 is not on the client's network")

	hs.send(msg(dhcpv4.MessageTypeRelease, macA, ci("192.0.2.100"), sid(srv))())
	want(t, rec, "DHCPRELEASE", 1, "level", "INFO", "mac", macA, "addr", "192.0.2.100", "hostname", "pc")

	hs.send(msg(R, macA, wantIP("192.0.2.101"))())
	hs.send(msg(dhcpv4.MessageTypeDecline, macA, wantIP("192.0.2.101"), sid(srv))())
	want(t, rec, "DHCPDECLINE", 1, "level", "WARN", "mac", macA, "addr", "192.0.2.101")

	hs.h.probed(hs.now, addrU32(netip.MustParseAddr("192.0.2.105")), mustMAC("02:00:00:00:09:09"))
	want(t, rec, "answers ARP", 1, "level", "WARN", "addr", "192.0.2.105", "holder", "02:00:00:00:09:09")

	// Debug: each request, and why one got no reply.
	out = hs.send(msg(R, macB, wantIP("192.0.2.100"), sid("192.0.2.99"))())
	hs.h.logReceived(&out.outcome) // as the server's read loop does
	want(t, rec, "request received", 1, "level", "DEBUG", "type", "request", "mac", macB)
	want(t, rec, "no reply", 1, "level", "DEBUG", "type", "request", "mac", macB, "reason", "the client chose another server")
	out = hs.readBack(hs.h.handleBytes(hs.now, []byte{1, 1, 6}, netip.AddrPort{}))
	hs.h.logReceived(&out.outcome)
	want(t, rec, "request received", 2, "type", "malformed")
	if got := rec.find("no reply"); len(got) != 2 || !strings.HasPrefix(got[1]["reason"], "malformed: ") {
		t.Errorf("no reply for a malformed packet: %v", got)
	}
}

// TestDecisionLogIsRateLimited: a flood cannot fill the disk; what is
// dropped is counted in the next line of its kind.
func TestDecisionLogIsRateLimited(t *testing.T) {
	hs, rec, clock := logHarness(t, testConfig(func(c *Config) { c.Pools[0].Range = span("192.0.2.100", "192.0.2.100") }))
	hs.send(msg(dhcpv4.MessageTypeRequest, macA, wantIP("192.0.2.100"))())
	for i := range 50 {
		hs.send(msg(dhcpv4.MessageTypeDiscover, net.HardwareAddr{2, 9, 0, 0, 0, byte(i)}.String())())
	}
	want(t, rec, "pools exhausted", 1)
	*clock = clock.Add(10 * time.Second)
	hs.send(msg(dhcpv4.MessageTypeDiscover, macC)())
	want(t, rec, "pools exhausted", 2, "suppressed", "49", "mac", macC)

	for i := range 1000 {
		hs.send(msg(dhcpv4.MessageTypeRequest, macB, wantIP("10.0.0."+strconv.Itoa(i%250)))())
	}
	if got := len(rec.find("DHCPNAK")); got != 100 {
		t.Errorf("1000 NAKs at once logged %d lines, want the burst of 100", got)
	}
	*clock = clock.Add(time.Second)
	hs.send(msg(dhcpv4.MessageTypeRequest, macB, wantIP("10.0.0.1"))())
	want(t, rec, "DHCPNAK", 101, "suppressed", "900")
}

// TestDecisionLogAck: on the wire, the ACK is logged once its lease is on
// disk, relayed ones naming the relay; a disabled level costs nothing.
func TestDecisionLogAck(t *testing.T) {
	n := newTestNet(t)
	rec := n.rec
	c := newPeerClient(t, n, "client", "02:00:00:00:0f:01")
	off := c.discover(t)
	req, _ := dhcpv4.NewRequestFromOffer(off, dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptHostName("box")))
	if _, _, err := c.mustReply(req, "255.255.255.255:67", dhcpv4.MessageTypeAck); err != nil {
		t.Fatal(err)
	}
	want(t, rec, "DHCPACK", 1, "mac", "02:00:00:00:0f:01", "addr", off.YourIPAddr.String(), "hostname", "box")
	if len(rec.find("request received")) != 2 {
		t.Errorf("debug lines of the exchange:\n%s", rec)
	}
}
