package dhcp

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestLogsFormatMACs(t *testing.T) {
	hs := newHarness(t, testConfig(func(c *Config) { c.Pools[0].Range = span("192.0.2.100", "192.0.2.100") }))
	var logs strings.Builder
	hs.h.log = logTo(&logs)
	R := dhcpv4.MessageTypeRequest
	hs.send(msg(R, macA, wantIP("192.0.2.100"), sid(srv))())
	hs.send(msg(dhcpv4.MessageTypeDecline, macA, wantIP("192.0.2.100"), sid(srv))())
	hs.send(msg(dhcpv4.MessageTypeDiscover, macB)())
	out := logs.String()
	for _, want := range []string{"declined its address", "no free address"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q line in:\n%s", want, out)
		}
	}
	if strings.Count(out, "mac=02:00:00:00:00:0") != 2 || strings.Contains(out, `\x02`) {
		t.Errorf("MACs not as aa:bb:cc:dd:ee:ff:\n%s", out)
	}
}

func TestExpiredAddressesLeastRecentlyUsed(t *testing.T) {
	R, D, rel := dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRelease
	hs := newHarness(t, testConfig())
	mac := func(i int) string { return "02:00:00:00:01:" + string("0123456789"[i]) + "0" }
	addr := func(i int) string { return u32Addr(addrU32(mustAddr("192.0.2.100")) + uint32(i)).String() }
	for i := range 10 {
		if o := hs.send(msg(R, mac(i), wantIP(addr(i)))()); o.reply.MessageType() != dhcpv4.MessageTypeAck {
			t.Fatalf("client %d: %s", i, o.why)
		}
	}
	offer := func(m string) string {
		t.Helper()
		o := hs.send(msg(D, m)())
		if o.reply == nil {
			t.Fatalf("no offer for %s: %s", m, o.why)
		}
		hs.send(msg(R, m, wantIP(o.reply.YourIPAddr.String()), sid(srv))())
		return o.reply.YourIPAddr.String()
	}
	// Released in the order 5, 1, 8: reused in that order, except that a
	// returning client gets its own address back.
	for _, i := range []int{5, 1, 8} {
		hs.now = hs.now.Add(time.Minute)
		hs.send(msg(rel, mac(i), ci(addr(i)), sid(srv))())
	}
	if got := offer(macA); got != addr(5) {
		t.Errorf("first new client got %s, want %s (released first)", got, addr(5))
	}
	if got := offer(mac(1)); got != addr(1) {
		t.Errorf("a returning client got %s, want its own %s", got, addr(1))
	}
	if got := offer(macB); got != addr(8) {
		t.Errorf("second new client got %s, want %s", got, addr(8))
	}
	// Expiry: the lease that ended first is reused first, across a
	// reconfiguration (the queue is rebuilt from the bindings).
	hs.configure(testConfig())
	for _, i := range []int{7, 2, 9} {
		hs.now = hs.now.Add(time.Minute)
		hs.send(msg(rel, mac(i), ci(addr(i)), sid(srv))())
	}
	hs.configure(testConfig())
	for _, want := range []int{7, 2, 9} {
		if got := offer("02:00:00:00:0f:0" + string("0123456789"[want])); got != addr(want) {
			t.Errorf("got %s, want %s", got, addr(want))
		}
	}
}

func TestInformAddressing(t *testing.T) {
	hs := newHarness(t, testConfig())
	inform := func(ciaddr, src string, mods ...dhcpv4.Modifier) sent {
		p := msg(dhcpv4.MessageTypeInform, macA, append(mods, ci(ciaddr))...)()
		var from netip.AddrPort
		if src != "" {
			from = netip.MustParseAddrPort(src)
		}
		return hs.readBack(hs.h.handleBytes(hs.now, p.ToBytes(), from))
	}
	for _, tc := range []struct {
		ciaddr, src string
		mods        []dhcpv4.Modifier
		to          string // "": no reply
	}{
		{ciaddr: "192.0.2.50", src: "192.0.2.50:68", to: "192.0.2.50:68"},
		{ciaddr: "192.0.2.50", src: "192.0.2.77:68", to: "192.0.2.50:68"},
		// The subnet's broadcast and network addresses are not a client.
		{ciaddr: "192.0.2.255", src: "192.0.2.50:68", to: "192.0.2.50:68"},
		{ciaddr: "192.0.2.0", src: "192.0.2.50:68", to: "192.0.2.50:68"},
		{ciaddr: "255.255.255.255", src: "192.0.2.50:68", to: "192.0.2.50:68"},
		// No ciaddr: the packet's source, its port included.
		{ciaddr: "0.0.0.0", src: "192.0.2.51:1068", to: "192.0.2.51:1068"},
		// Nothing unicast to answer to.
		{ciaddr: "192.0.2.255", src: "0.0.0.0:68"},
		{ciaddr: "0.0.0.0", src: "0.0.0.0:68"},
		{ciaddr: "0.0.0.0", src: "255.255.255.255:68"},
		{ciaddr: "0.0.0.0"},
		// Relayed: back to the relay.
		{ciaddr: "198.51.100.20", src: "198.51.100.1:67", mods: []dhcpv4.Modifier{gi("198.51.100.1")}, to: "198.51.100.1:67"},
		{ciaddr: "0.0.0.0", src: "198.51.100.1:67", mods: []dhcpv4.Modifier{gi("198.51.100.1")}, to: "198.51.100.1:67"},
	} {
		o := inform(tc.ciaddr, tc.src, tc.mods...)
		got := ""
		if o.reply != nil {
			got = o.to.String()
		}
		if got != tc.to {
			t.Errorf("INFORM ciaddr %s from %s: sent to %q, want %q (why %q)", tc.ciaddr, tc.src, got, tc.to, o.why)
		}
		if o.reply != nil && (o.direct || o.reply.Options.Has(dhcpv4.OptionIPAddressLeaseTime)) {
			t.Errorf("INFORM ciaddr %s: direct %v, reply %s", tc.ciaddr, o.direct, o.reply.Summary())
		}
	}
}

func fqdn(flags byte, name []byte) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionFQDN, append([]byte{flags, 0, 0}, name...)))
}

func TestClientFQDNAnswered(t *testing.T) {
	D, R := dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest
	wire := []byte{6, 'l', 'a', 'p', 't', 'o', 'p'} // a partial name
	fq := []byte{6, 'l', 'a', 'p', 't', 'o', 'p', 3, 'l', 'a', 'n', 4, 't', 'e', 's', 't', 0}
	for _, tc := range []struct {
		name   string
		mods   []dhcpv4.Modifier
		config func(*Config)
		want   []byte
	}{
		{"wire format, S asked: overridden", []dhcpv4.Modifier{fqdn(fqdnE|fqdnS, wire)}, nil,
			append([]byte{fqdnE | fqdnN | fqdnO, 255, 255}, fq...)},
		{"wire format, N asked", []dhcpv4.Modifier{fqdn(fqdnE|fqdnN, wire)}, nil,
			append([]byte{fqdnE | fqdnN, 255, 255}, fq...)},
		{"ASCII", []dhcpv4.Modifier{fqdn(0, []byte("Laptop.example.com"))}, nil,
			append([]byte{fqdnN, 255, 255}, "laptop.lan.test"...)},
		{"no domain: a partial name", []dhcpv4.Modifier{fqdn(fqdnE, wire)}, func(c *Config) { c.Pools[0].Domain = "" },
			append([]byte{fqdnE | fqdnN, 255, 255}, wire...)},
		{"no name asked", []dhcpv4.Modifier{fqdn(fqdnE, nil)}, nil, []byte{fqdnE | fqdnN, 255, 255}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			if tc.config != nil {
				c = testConfig(tc.config)
			}
			hs := newHarness(t, c)
			for _, mt := range []dhcpv4.MessageType{D, R} {
				mods := tc.mods
				if mt == R {
					mods = append(mods, wantIP("192.0.2.100"), sid(srv))
				}
				o := hs.send(msg(mt, macA, mods...)())
				_, opts, err := parseWire(o.wire)
				if err != nil {
					t.Fatal(err)
				}
				if got := opts[optClientFQDN]; !bytes.Equal(got, tc.want) {
					t.Errorf("%s: option 81 %v, want %v", mt, got, tc.want)
				}
			}
		})
	}
	// A name another lease holds is not the client's: the answer has none.
	hs := newHarness(t, testConfig())
	hs.send(msg(R, macB, wantIP("192.0.2.101"), host("laptop"))())
	o := hs.send(msg(R, macA, wantIP("192.0.2.100"), fqdn(fqdnE, wire))())
	if got := o.reply.Options[optClientFQDN]; !bytes.Equal(got, []byte{fqdnE | fqdnN, 255, 255}) {
		t.Errorf("option 81 for a name held elsewhere: %v", got)
	}
	// No option 81 asked, none answered.
	if o := hs.send(msg(D, macC)()); o.reply.Options.Has(dhcpv4.OptionFQDN) {
		t.Error("option 81 sent unasked")
	}
}

func TestDiscoverWithoutEnd(t *testing.T) {
	hs := newHarness(t, testConfig())
	full := msg(dhcpv4.MessageTypeDiscover, macA, host("pc"))().ToBytes()
	end := bytes.LastIndexByte(full, optEnd)
	noEnd := full[:end:end]                                    // the options stop short
	padded := append(append([]byte(nil), full[:end]...), 0, 0) // PADs, no END
	for name, b := range map[string][]byte{"cut": noEnd, "padded": padded} {
		o := hs.readBack(hs.h.handleBytes(hs.now, b, netip.AddrPort{}))
		if o.reply == nil || o.reply.MessageType() != dhcpv4.MessageTypeOffer {
			t.Errorf("%s: no OFFER for a DISCOVER without END: %q", name, o.why)
		}
	}
	// An option that runs past the end is still malformed.
	bad := append(append([]byte(nil), full[:end]...), optHostName, 9, 'x')
	if o := hs.readBack(hs.h.handleBytes(hs.now, bad, netip.AddrPort{})); o.reply != nil {
		t.Error("a truncated option was answered")
	}
	if hs.cnt.malformed.Load() != 1 {
		t.Errorf("malformed %d, want 1", hs.cnt.malformed.Load())
	}
}
