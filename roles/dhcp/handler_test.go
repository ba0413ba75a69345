package dhcp

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// harness drives a handler with packets, without sockets or disk.
type harness struct {
	t   testing.TB
	h   *handler
	cnt counters
	now time.Time
}

func newHarness(t testing.TB, c *Config) *harness {
	t.Helper()
	hs := &harness{t: t, now: time.Unix(1_700_000_000, 0)}
	hs.h = &handler{alloc: newAllocator(0, 0), counters: &hs.cnt, log: quietLog()}
	hs.configure(c)
	return hs
}

// configure applies c the way Set does.
func (hs *harness) configure(c *Config) {
	hs.t.Helper()
	if err := c.validate(); err != nil {
		hs.t.Fatal(err)
	}
	hs.h.configure(c.clone())
}

// send runs one packet through the wire format and the handler.
func (hs *harness) send(p *dhcpv4.DHCPv4) sent {
	return hs.readBack(hs.h.handleBytes(hs.now, p.ToBytes(), netip.AddrPort{}))
}

// sent is an outcome with its reply read back from the wire as a client
// reads it: the library's message, with the options of every field that
// carries them (file and sname too, by option 52).
type sent struct {
	outcome
	reply *dhcpv4.DHCPv4 // nil: no reply
}

func (hs *harness) readBack(o outcome) sent {
	hs.t.Helper()
	s := sent{outcome: o}
	if o.mt == 0 {
		return s
	}
	r, err := dhcpv4.FromBytes(o.wire)
	if err != nil {
		hs.t.Fatalf("the reply does not parse: %v", err)
	}
	_, opts, err := parseWire(o.wire)
	if err != nil {
		hs.t.Fatalf("the reply's options do not parse: %v", err)
	}
	delete(opts, optOverload)
	r.Options = opts
	s.reply = r
	return s
}

// packet builders

func msg(mt dhcpv4.MessageType, mac string, mods ...dhcpv4.Modifier) func() *dhcpv4.DHCPv4 {
	return func() *dhcpv4.DHCPv4 {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			panic(err)
		}
		base := []dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt),
			dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4})}
		p, err := dhcpv4.New(append(base, mods...)...)
		if err != nil {
			panic(err)
		}
		return p
	}
}

func ip(s string) net.IP { return net.ParseIP(s).To4() }

func wantIP(s string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip(s))) }
func sid(s string) dhcpv4.Modifier    { return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip(s))) }
func ci(s string) dhcpv4.Modifier     { return dhcpv4.WithClientIP(ip(s)) }
func gi(s string) dhcpv4.Modifier     { return dhcpv4.WithGatewayIP(ip(s)) }
func host(s string) dhcpv4.Modifier   { return dhcpv4.WithOption(dhcpv4.OptHostName(s)) }
func cid(b ...byte) dhcpv4.Modifier   { return dhcpv4.WithOption(dhcpv4.OptClientIdentifier(b)) }

var bcastFlag = dhcpv4.WithBroadcast(true)

const (
	macA = "02:00:00:00:00:01"
	macB = "02:00:00:00:00:02"
	macC = "02:00:00:00:00:03"
	macS = "02:00:00:00:00:aa" // static 192.0.2.10 "printer"
	srv  = "192.0.2.2"
)

// step is one packet and what must come of it.
type step struct {
	advance time.Duration
	pkt     func() *dhcpv4.DHCPv4
	reply   dhcpv4.MessageType // 0: no reply
	yiaddr  string
	to      string
	commit  int // bindings made durable before the reply
	names   []nameChange
	check   func(t *testing.T, o sent)
}

func TestHandlerExchanges(t *testing.T) {
	D, R := dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest
	OFFER, ACK, NAK := dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak
	bc := "255.255.255.255:68"
	dora := func(mac, addr string, mods ...dhcpv4.Modifier) []step {
		return []step{
			{pkt: msg(D, mac, mods...), reply: OFFER, yiaddr: addr, to: addr + ":68"},
			{pkt: msg(R, mac, append(mods, wantIP(addr), sid(srv))...), reply: ACK, yiaddr: addr, to: addr + ":68", commit: 1},
		}
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name   string
		config *Config
		steps  []step
	}{
		{name: "discover offer request ack, unicast to yiaddr", steps: dora(macA, "192.0.2.100")},
		{name: "an offer is held but not committed", steps: []step{
			{pkt: msg(D, macA), reply: OFFER, yiaddr: "192.0.2.100", to: "192.0.2.100:68"},
			{pkt: msg(D, macB), reply: OFFER, yiaddr: "192.0.2.101", to: "192.0.2.101:68"},
			{pkt: msg(D, macA), reply: OFFER, yiaddr: "192.0.2.100", to: "192.0.2.100:68"},
		}},
		{name: "broadcast flag gets a broadcast reply", steps: []step{
			{pkt: msg(D, macA, bcastFlag), reply: OFFER, yiaddr: "192.0.2.100", to: bc},
		}},
		{name: "the requested address when free", steps: []step{
			{pkt: msg(D, macA, wantIP("192.0.2.105")), reply: OFFER, yiaddr: "192.0.2.105"},
			{pkt: msg(D, macB, wantIP("192.0.2.105")), reply: OFFER, yiaddr: "192.0.2.100"},
			{pkt: msg(D, macC, wantIP("10.9.9.9")), reply: OFFER, yiaddr: "192.0.2.101"},
		}},
		{name: "selecting another server drops the offer", steps: []step{
			{pkt: msg(D, macA), reply: OFFER, yiaddr: "192.0.2.100"},
			{pkt: msg(R, macA, wantIP("192.0.2.100"), sid("192.0.2.99"))},
			{pkt: msg(D, macB), reply: OFFER, yiaddr: "192.0.2.101"},
			{pkt: msg(R, macB, wantIP("192.0.2.100"), sid(srv)), reply: ACK, yiaddr: "192.0.2.100", commit: 1},
		}},
		{name: "selecting an address offered to another client is refused", steps: []step{
			{pkt: msg(D, macA), reply: OFFER, yiaddr: "192.0.2.100"},
			{pkt: msg(R, macB, wantIP("192.0.2.100"), sid(srv)), reply: NAK, to: bc},
		}},
		{name: "renewing is acked to ciaddr", steps: cat(dora(macA, "192.0.2.100"), []step{
			{advance: 30 * time.Minute, pkt: msg(R, macA, ci("192.0.2.100")), reply: ACK, yiaddr: "192.0.2.100", to: "192.0.2.100:68", commit: 1},
		})},
		{name: "init-reboot of the client's own address", steps: cat(dora(macA, "192.0.2.100"), []step{
			{pkt: msg(R, macA, wantIP("192.0.2.100")), reply: ACK, yiaddr: "192.0.2.100", commit: 1},
		})},
		{name: "init-reboot of another client's address is NAKed by broadcast", steps: cat(dora(macA, "192.0.2.100"), []step{
			{pkt: msg(R, macB, wantIP("192.0.2.100")), reply: NAK, to: bc},
		})},
		{name: "wrong subnet is NAKed when authoritative", steps: []step{
			{pkt: msg(R, macA, wantIP("10.1.2.3")), reply: NAK, to: bc},
		}},
		{name: "wrong subnet is ignored when not authoritative",
			config: testConfig(func(c *Config) { c.Authoritative = false }),
			steps:  []step{{pkt: msg(R, macA, wantIP("10.1.2.3"))}}},
		{name: "a free in-pool address is granted to a client the server does not know", steps: []step{
			{pkt: msg(R, macA, ci("192.0.2.107")), reply: ACK, yiaddr: "192.0.2.107", to: "192.0.2.107:68", commit: 1},
			{pkt: msg(R, macB, wantIP("192.0.2.108")), reply: ACK, yiaddr: "192.0.2.108", commit: 1},
		}},
		{name: "an on-subnet address outside every pool is NAKed", steps: []step{
			{pkt: msg(R, macA, ci("192.0.2.50")), reply: NAK, to: bc},
		}},
		{name: "the expired lease's address returns to its client", steps: cat(dora(macA, "192.0.2.100"), []step{
			{advance: 2 * time.Hour, pkt: msg(D, macB), reply: OFFER, yiaddr: "192.0.2.101"},
			{pkt: msg(D, macA), reply: OFFER, yiaddr: "192.0.2.100"},
		})},
		{name: "release keeps the address for its client", steps: cat(dora(macA, "192.0.2.100"), []step{
			{pkt: msg(dhcpv4.MessageTypeRelease, macA, ci("192.0.2.100"), sid(srv)), commit: 1},
			{pkt: msg(D, macB), reply: OFFER, yiaddr: "192.0.2.101"},
			{pkt: msg(D, macA), reply: OFFER, yiaddr: "192.0.2.100"},
		})},
		{name: "a released address is free for others", steps: cat(dora(macA, "192.0.2.100"), []step{
			{pkt: msg(dhcpv4.MessageTypeRelease, macA, ci("192.0.2.100"), sid(srv)), commit: 1},
			{pkt: msg(R, macB, wantIP("192.0.2.100")), reply: ACK, yiaddr: "192.0.2.100", commit: 1},
		})},
		{name: "release by another client is ignored", steps: cat(dora(macA, "192.0.2.100"), []step{
			{pkt: msg(dhcpv4.MessageTypeRelease, macB, ci("192.0.2.100"), sid(srv))},
			{pkt: msg(R, macB, wantIP("192.0.2.100")), reply: NAK},
		})},
		{name: "decline quarantines the address", steps: cat(dora(macA, "192.0.2.100"), []step{
			{pkt: msg(dhcpv4.MessageTypeDecline, macA, wantIP("192.0.2.100"), sid(srv)), commit: 1,
				check: func(t *testing.T, o sent) {
					if o.commit[0].state != bindDeclined {
						t.Errorf("committed state %c, want declined", o.commit[0].state)
					}
				}},
			{pkt: msg(D, macA), reply: OFFER, yiaddr: "192.0.2.101"},
			{pkt: msg(R, macB, wantIP("192.0.2.100")), reply: NAK},
			{advance: 11 * time.Minute, pkt: msg(R, macB, wantIP("192.0.2.100")), reply: ACK, yiaddr: "192.0.2.100", commit: 1},
		})},
		{name: "decline of an address the client does not hold is ignored", steps: cat(dora(macA, "192.0.2.100"), []step{
			{pkt: msg(dhcpv4.MessageTypeDecline, macB, wantIP("192.0.2.100"), sid(srv))},
			{pkt: msg(R, macA, ci("192.0.2.100")), reply: ACK, commit: 1},
		})},
		{name: "inform gets options without a lease", steps: []step{
			{pkt: msg(dhcpv4.MessageTypeInform, macA, ci("192.0.2.50")), reply: ACK, to: "192.0.2.50:68",
				check: func(t *testing.T, o sent) {
					if o.reply.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || !o.reply.YourIPAddr.Equal(net.IPv4zero) {
						t.Errorf("INFORM ACK has a lease: %s", o.reply.Summary())
					}
					if !o.reply.Router()[0].Equal(ip("192.0.2.1")) {
						t.Errorf("INFORM ACK router %v", o.reply.Router())
					}
				}},
			{pkt: msg(dhcpv4.MessageTypeInform, macA, ci("10.0.0.5"))},
		}},
		{name: "relayed requests use the pool of giaddr and go back to the relay", steps: []step{
			{pkt: msg(D, macA, gi("198.51.100.1"), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 3, 'p', '0', '1'}))),
				reply: OFFER, yiaddr: "198.51.100.10", to: "198.51.100.1:67",
				check: func(t *testing.T, o sent) {
					if got := o.reply.Options.Get(dhcpv4.OptionRelayAgentInformation); !bytes.Equal(got, []byte{1, 3, 'p', '0', '1'}) {
						t.Errorf("option 82 not echoed: %x", got)
					}
					if !o.reply.GatewayIPAddr.Equal(ip("198.51.100.1")) {
						t.Errorf("giaddr %v", o.reply.GatewayIPAddr)
					}
					if lt := o.reply.IPAddressLeaseTime(0); lt != 2*time.Hour {
						t.Errorf("relayed pool lease time %v", lt)
					}
				}},
			{pkt: msg(R, macA, gi("198.51.100.1"), wantIP("198.51.100.10"), sid(srv)), reply: ACK, yiaddr: "198.51.100.10", to: "198.51.100.1:67", commit: 1},
			{pkt: msg(R, macB, gi("198.51.100.1"), wantIP("192.0.2.100")), reply: NAK, to: "198.51.100.1:67",
				check: func(t *testing.T, o sent) {
					if !o.reply.IsBroadcast() {
						t.Error("a NAK through a relay must have the broadcast flag")
					}
				}},
			{pkt: msg(D, macC, gi("203.0.113.1"))},
		}},
		{name: "a static lease by MAC with its host name", steps: []step{
			{pkt: msg(D, macS), reply: OFFER, yiaddr: "192.0.2.10",
				check: func(t *testing.T, o sent) {
					if o.reply.HostName() != "printer" {
						t.Errorf("static OFFER host name %q", o.reply.HostName())
					}
				}},
			{pkt: msg(R, macS, wantIP("192.0.2.10"), sid(srv), host("laptop")), reply: ACK, yiaddr: "192.0.2.10", commit: 1,
				names: []nameChange{{publish: true, host: "printer", addr: netip.MustParseAddr("192.0.2.10")}}},
			{pkt: msg(R, macS, wantIP("192.0.2.100")), reply: NAK},
			{pkt: msg(R, macA, wantIP("192.0.2.10")), reply: NAK},
		}},
		{name: "a static lease by client id", steps: []step{
			{pkt: msg(D, macB, cid(1, 2, 0, 0, 0, 0, 0xbb)), reply: OFFER, yiaddr: "192.0.2.11"},
			{pkt: msg(D, macB), reply: OFFER, yiaddr: "192.0.2.100"},
		}},
		{name: "the client id, not the MAC, identifies the client", steps: cat(
			dora(macA, "192.0.2.100", cid(1, 2, 3)), dora(macA, "192.0.2.101", cid(4, 5, 6)),
			[]step{{pkt: msg(R, macA, ci("192.0.2.100"), cid(4, 5, 6)), reply: NAK}},
		)},
		{name: "host names are published, renamed and withdrawn", steps: []step{
			{pkt: msg(D, macA, host("Laptop_1")), reply: OFFER, yiaddr: "192.0.2.100"},
			{pkt: msg(R, macA, wantIP("192.0.2.100"), sid(srv), host("Laptop_1")), reply: ACK, commit: 1,
				names: []nameChange{{publish: true, host: "laptop-1", addr: netip.MustParseAddr("192.0.2.100")}}},
			{pkt: msg(R, macA, ci("192.0.2.100"), host("laptop-1")), reply: ACK, commit: 1},
			{pkt: msg(R, macA, ci("192.0.2.100")), reply: ACK, commit: 1},
			{pkt: msg(R, macA, ci("192.0.2.100"), host("desk")), reply: ACK, commit: 1,
				names: []nameChange{{host: "laptop-1", addr: netip.MustParseAddr("192.0.2.100")}, {publish: true, host: "desk", addr: netip.MustParseAddr("192.0.2.100")}}},
			{pkt: msg(dhcpv4.MessageTypeRelease, macA, ci("192.0.2.100")), commit: 1,
				names: []nameChange{{host: "desk", addr: netip.MustParseAddr("192.0.2.100")}}},
			{pkt: msg(R, macB, wantIP("192.0.2.101"), host("wpad")), reply: ACK, commit: 1},
		}},
		{name: "moving to another address ends the old lease", steps: cat(dora(macA, "192.0.2.100", host("pc")), []step{
			{pkt: msg(R, macA, wantIP("192.0.2.105"), host("pc")), reply: ACK, yiaddr: "192.0.2.105", commit: 2,
				names: []nameChange{{host: "pc", addr: netip.MustParseAddr("192.0.2.100")}, {publish: true, host: "pc", addr: netip.MustParseAddr("192.0.2.105")}}},
			{pkt: msg(R, macB, wantIP("192.0.2.100")), reply: ACK, yiaddr: "192.0.2.100", commit: 1},
		})},
		{name: "malformed requests are dropped", steps: []step{
			{pkt: msg(dhcpv4.MessageTypeNone, macA)},
			{pkt: msg(R, macA)},
			{pkt: msg(dhcpv4.MessageTypeOffer, macA)},
			{pkt: msg(dhcpv4.MessageTypeDecline, macA)},
			{pkt: func() *dhcpv4.DHCPv4 { p := msg(D, macA)(); p.OpCode = dhcpv4.OpcodeBootReply; return p }},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.config
			if c == nil {
				c = testConfig()
			}
			hs := newHarness(t, c)
			for i, st := range tc.steps {
				hs.now = hs.now.Add(st.advance)
				p := st.pkt()
				o := hs.send(p)
				var got dhcpv4.MessageType
				if o.reply != nil {
					got = o.reply.MessageType()
				}
				if got != st.reply {
					t.Fatalf("step %d (%s): reply %v, want %v (why %q)", i, p.MessageType(), got, st.reply, o.why)
				}
				if st.yiaddr != "" && !o.reply.YourIPAddr.Equal(ip(st.yiaddr)) {
					t.Errorf("step %d: yiaddr %v, want %s", i, o.reply.YourIPAddr, st.yiaddr)
				}
				if st.to != "" && o.to.String() != st.to {
					t.Errorf("step %d: sent to %v, want %s", i, o.to, st.to)
				}
				if len(o.commit) != st.commit {
					t.Errorf("step %d: %d bindings committed, want %d", i, len(o.commit), st.commit)
				}
				if st.names != nil && !equalNames(o.names, st.names) {
					t.Errorf("step %d: names %+v, want %+v", i, o.names, st.names)
				}
				if o.reply != nil {
					checkReplyHeader(t, i, p, o)
				}
				if st.check != nil {
					st.check(t, o)
				}
			}
			if n := hs.cnt.panics.Load(); n > 0 {
				t.Errorf("%d panics", n)
			}
		})
	}
}

func equalNames(a, b []nameChange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkReplyHeader checks what every reply must carry.
func checkReplyHeader(t *testing.T, i int, req *dhcpv4.DHCPv4, o sent) {
	t.Helper()
	r := o.reply
	if r.OpCode != dhcpv4.OpcodeBootReply || r.TransactionID != req.TransactionID || !bytes.Equal(r.ClientHWAddr, req.ClientHWAddr) {
		t.Errorf("step %d: reply header %s", i, r.Summary())
	}
	if !r.ServerIdentifier().Equal(ip(srv)) {
		t.Errorf("step %d: server identifier %v, want %s", i, r.ServerIdentifier(), srv)
	}
	if id := req.Options.Get(dhcpv4.OptionClientIdentifier); id != nil && !bytes.Equal(r.Options.Get(dhcpv4.OptionClientIdentifier), id) {
		t.Errorf("step %d: client identifier not echoed", i)
	}
	if _, err := dhcpv4.FromBytes(o.wire); err != nil {
		t.Errorf("step %d: reply does not parse: %v", i, err)
	}
	if list, _, err := parseWire(o.wire); err != nil || list[0].code != optMessageType {
		t.Errorf("step %d: reply options %v, err %v; want 53 first", i, codes(list), err)
	}
}

func TestHandlerOptions(t *testing.T) {
	hs := newHarness(t, testConfig())
	req := msg(dhcpv4.MessageTypeDiscover, macA, dhcpv4.WithRequestedOptions(dhcpv4.OptionClasslessStaticRoute))()
	o := hs.send(req)
	if o.reply == nil {
		t.Fatalf("no offer: %s", o.why)
	}
	r := o.reply
	checks := []struct {
		what string
		got  any
		want any
	}{
		{"mask", net.IP(r.SubnetMask()).String(), "255.255.255.0"},
		{"router", r.Router()[0].String(), "192.0.2.1"},
		{"dns", r.DNS()[0].String(), "192.0.2.3"},
		{"domain", r.DomainName(), "lan.test"},
		{"broadcast", r.BroadcastAddress().String(), "192.0.2.255"},
		{"ntp", r.NTPServers()[0].String(), "192.0.2.1"},
		{"lease", r.IPAddressLeaseTime(0), time.Hour},
		{"t1", r.IPAddressRenewalTime(0), 30 * time.Minute},
		{"t2", r.IPAddressRebindingTime(0), 52*time.Minute + 30*time.Second},
		{"raw 252", string(r.Options.Get(dhcpv4.GenericOptionCode(252))), "http://wpad.invalid/wpad.dat"},
		{"routes", dhcpv4.Routes(r.ClasslessStaticRoute()).String(), "route to 172.16.0.0/12 via 192.0.2.254; route to 0.0.0.0/0 via 192.0.2.1"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	// Option 121 only for clients that ask for it.
	o = hs.send(msg(dhcpv4.MessageTypeDiscover, macB)())
	if o.reply.Options.Has(dhcpv4.OptionClasslessStaticRoute) {
		t.Error("option 121 sent to a client that did not request it")
	}
}

func TestHandlerExhaustionAndReclaim(t *testing.T) {
	hs := newHarness(t, testConfig())
	for i := range 10 {
		mac := net.HardwareAddr{2, 1, 0, 0, 0, byte(i)}.String()
		o := hs.send(msg(dhcpv4.MessageTypeRequest, mac, wantIP(u32Addr(addrU32(netip.MustParseAddr("192.0.2.100"))+uint32(i)).String()))())
		if o.reply == nil || o.reply.MessageType() != dhcpv4.MessageTypeAck {
			t.Fatalf("client %d: no ACK: %s", i, o.why)
		}
	}
	if o := hs.send(msg(dhcpv4.MessageTypeDiscover, macC)()); o.reply != nil {
		t.Fatalf("a full pool offered %v", o.reply.YourIPAddr)
	}
	if hs.cnt.exhausted.Load() != 1 {
		t.Errorf("exhausted counter %d, want 1", hs.cnt.exhausted.Load())
	}
	hs.now = hs.now.Add(61 * time.Minute)
	o := hs.send(msg(dhcpv4.MessageTypeDiscover, macC)())
	if o.reply == nil {
		t.Fatalf("expired leases were not reclaimed: %s", o.why)
	}
	if len(o.names) != 0 {
		t.Errorf("names %v for leases without host names", o.names)
	}
}

func TestHandlerReconfigureKeepsLeases(t *testing.T) {
	hs := newHarness(t, testConfig())
	for _, mac := range []string{macA, macB} {
		if o := hs.send(msg(dhcpv4.MessageTypeRequest, mac, wantIP(map[string]string{macA: "192.0.2.100", macB: "192.0.2.108"}[mac]))()); o.reply.MessageType() != dhcpv4.MessageTypeAck {
			t.Fatalf("setup: %s", o.why)
		}
	}
	// Shrink the pool: .108 falls outside.
	hs.configure(testConfig(func(c *Config) { c.Pools[0].Range.End = mustAddr("192.0.2.104") }))
	if len(hs.h.alloc.byAddr) != 2 {
		t.Fatalf("leases after reconfigure: %d, want 2", len(hs.h.alloc.byAddr))
	}
	if o := hs.send(msg(dhcpv4.MessageTypeRequest, macA, ci("192.0.2.100"))()); o.reply.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("a lease inside the new pool was not renewed: %s", o.why)
	}
	if o := hs.send(msg(dhcpv4.MessageTypeRequest, macB, ci("192.0.2.108"))()); o.reply.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("a lease outside the new pool was renewed")
	}
	if hs.h.alloc.byAddr[addrU32(netip.MustParseAddr("192.0.2.108"))] == nil {
		t.Error("the lease outside the new pool was dropped before it expired")
	}
	o := hs.send(msg(dhcpv4.MessageTypeDiscover, macB)())
	if o.reply == nil || !o.reply.YourIPAddr.Equal(ip("192.0.2.101")) {
		t.Errorf("client of the dropped range offered %v, want 192.0.2.101", o.reply)
	}
	hs.now = hs.now.Add(2 * time.Hour)
	hs.h.alloc.sweep(hs.now.Unix(), hs.now.UnixNano())
	if hs.h.alloc.byAddr[addrU32(netip.MustParseAddr("192.0.2.108"))] != nil {
		t.Error("the expired lease outside every pool was kept")
	}
}

func TestFQDNAndSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"laptop", "laptop"},
		{"My Laptop", "my-laptop"},
		{"host.example.com", "host"},
		{"-x_y-", "x-y"},
		{"LOCALHOST", ""},
		{"wpad", ""},
		{"émile", "mile"},
		{"", ""},
		{"...", ""},
		{string(bytes.Repeat([]byte("a"), 80)), string(bytes.Repeat([]byte("a"), 63))},
	}
	for _, tc := range tests {
		if got := sanitizeHostname(tc.in); got != tc.want {
			t.Errorf("sanitizeHostname(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := fqdnFirstLabel([]byte{0x04, 0, 0, 5, 'p', 'r', 'i', 'n', 't', 3, 'l', 'a', 'n', 0}); got != "print" {
		t.Errorf("wire fqdn: %q", got)
	}
	if got := fqdnFirstLabel(append([]byte{0, 0, 0}, "desk.lan"...)); got != "desk" && sanitizeHostname(got) != "desk" {
		t.Errorf("ascii fqdn: %q", got)
	}
	for _, bad := range [][]byte{nil, {4}, {4, 0, 0, 9, 'a'}} {
		_ = fqdnFirstLabel(bad)
	}
}

func TestHandlerProbeBeforeOffer(t *testing.T) {
	hs := newHarness(t, testConfig(func(c *Config) { c.ProbeBeforeOffer = true }))
	d := msg(dhcpv4.MessageTypeDiscover, macA)
	o := hs.send(d())
	if !o.probe || !o.reply.YourIPAddr.Equal(ip("192.0.2.100")) {
		t.Fatalf("first offer: probe %v, yiaddr %v", o.probe, o.reply.YourIPAddr)
	}
	if again := hs.send(d()); again.reply != nil {
		t.Error("a retransmitted DISCOVER was answered while its address was being probed")
	}
	// Someone answers for .100: it is quarantined and the DISCOVER tried again.
	if rec, offer := hs.h.probed(hs.now, addrU32(netip.MustParseAddr("192.0.2.100")), mustMAC("02:00:00:00:09:09")); offer || rec == nil || rec.state != bindDeclined {
		t.Fatalf("a taken address was not quarantined: %+v", rec)
	}
	o = hs.send(d())
	if !o.probe || !o.reply.YourIPAddr.Equal(ip("192.0.2.101")) {
		t.Fatalf("second offer: probe %v, yiaddr %v", o.probe, o.reply.YourIPAddr)
	}
	if rec, offer := hs.h.probed(hs.now, addrU32(netip.MustParseAddr("192.0.2.101")), nil); rec != nil || !offer {
		t.Fatalf("a free address was quarantined")
	}
	if o = hs.send(d()); o.probe || o.reply == nil || !o.reply.YourIPAddr.Equal(ip("192.0.2.101")) {
		t.Errorf("retransmitted DISCOVER after the probe: probe %v, reply %v", o.probe, o.reply)
	}
	// A client's previous address is not probed.
	if o = hs.send(msg(dhcpv4.MessageTypeRequest, macA, wantIP("192.0.2.101"), sid(srv))()); o.reply.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatal(o.why)
	}
	hs.now = hs.now.Add(2 * time.Hour)
	if o = hs.send(d()); o.probe || !o.reply.YourIPAddr.Equal(ip("192.0.2.101")) {
		t.Errorf("the client's expired address: probe %v, yiaddr %v", o.probe, o.reply.YourIPAddr)
	}
	if hs.cnt.conflicts.Load() != 1 {
		t.Errorf("conflicts %d", hs.cnt.conflicts.Load())
	}
}

// While an address is probed, its client is not ACKed it (the OFFER has not
// left), and a probe that ends once a client holds the address live (a lease
// made meanwhile) leaves that lease alone: the client answering ARP for its
// own address must not get it quarantined.
func TestHandlerProbeRace(t *testing.T) {
	hs := newHarness(t, testConfig(func(c *Config) { c.ProbeBeforeOffer = true }))
	addr := addrU32(netip.MustParseAddr("192.0.2.100"))
	if o := hs.send(msg(dhcpv4.MessageTypeDiscover, macA)()); !o.probe || !o.reply.YourIPAddr.Equal(ip("192.0.2.100")) {
		t.Fatalf("offer: probe %v, yiaddr %v", o.probe, o.reply.YourIPAddr)
	}
	if o := hs.send(msg(dhcpv4.MessageTypeRequest, macA, wantIP("192.0.2.100"), sid(srv))()); o.reply != nil || len(o.commit) != 0 {
		t.Fatalf("a REQUEST for the address being probed was answered: %v", o.reply)
	}
	if b := hs.h.alloc.byAddr[addr]; b != nil {
		t.Fatalf("a REQUEST during the probe made a binding: %+v", b)
	}

	// A lease of the address made while the probe ran (by any path) stands.
	b := &binding{addr: addr, state: bindActive, expires: hs.now.Unix() + 3600, mac: string(mustMAC(macA))}
	hs.h.alloc.put(b)
	rec, offer := hs.h.probed(hs.now, addr, mustMAC(macA))
	if rec != nil || offer {
		t.Errorf("probe answered by the address's live holder: record %+v, offer %v", rec, offer)
	}
	if got := hs.h.alloc.byAddr[addr]; got != b || got.state != bindActive {
		t.Errorf("the live lease was replaced: %+v", got)
	}
	if hs.h.alloc.offers[addr] != nil || hs.cnt.conflicts.Load() != 0 {
		t.Errorf("offer %+v left, %d conflicts", hs.h.alloc.offers[addr], hs.cnt.conflicts.Load())
	}
}

// A probe whose sockets were replaced leaves no offer marked as probing:
// the client's next DISCOVER is answered, not dropped until it expires.
func TestHandlerProbeAbandoned(t *testing.T) {
	hs := newHarness(t, testConfig(func(c *Config) { c.ProbeBeforeOffer = true }))
	d := msg(dhcpv4.MessageTypeDiscover, macA)
	if o := hs.send(d()); !o.probe {
		t.Fatal("no probe")
	}
	hs.h.probeAbandoned(addrU32(netip.MustParseAddr("192.0.2.100")))
	if o := hs.send(d()); o.reply == nil || !o.probe {
		t.Errorf("DISCOVER after an abandoned probe: probe %v, reply %v (%s)", o.probe, o.reply, o.why)
	}
}
