package dhcp

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandle feeds raw bytes into the handler, one after another on the same
// state: it must never panic, and every reply must parse.
func FuzzHandle(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s().ToBytes())
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 6, 0})
	hs := newHarness(f, testConfig())
	f.Fuzz(func(t *testing.T, b []byte) {
		hs.now = hs.now.Add(time.Second)
		out := hs.h.handleBytes(hs.now, b, netip.MustParseAddrPort("192.0.2.77:68"))
		if n := hs.cnt.panics.Load(); n > 0 {
			t.Fatalf("the handler panicked on %x", b)
		}
		if out.mt != 0 {
			if _, err := dhcpv4.FromBytes(out.wire); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			if _, _, err := parseWire(out.wire); err != nil {
				t.Fatalf("reply options do not parse: %v", err)
			}
			if n := len(out.wire) + ipUDPHeaders; n > maxMessage {
				t.Fatalf("a reply of %d bytes", n)
			}
			if !out.to.IsValid() {
				t.Fatal("a reply without a destination")
			}
		}
		for _, c := range out.commit {
			if _, ok := decodeRecord(encodeRecord(nil, c)); !ok {
				t.Fatalf("committed binding %+v does not survive the log", c)
			}
		}
	})
}

// fuzzSeeds are requests of every kind.
func fuzzSeeds() []func() *dhcpv4.DHCPv4 {
	return []func() *dhcpv4.DHCPv4{
		msg(dhcpv4.MessageTypeDiscover, macA, host("pc"), dhcpv4.WithRequestedOptions(dhcpv4.OptionClasslessStaticRoute)),
		msg(dhcpv4.MessageTypeRequest, macA, wantIP("192.0.2.100"), sid(srv)),
		msg(dhcpv4.MessageTypeRequest, macB, ci("192.0.2.101")),
		msg(dhcpv4.MessageTypeDecline, macA, wantIP("192.0.2.100"), sid(srv)),
		msg(dhcpv4.MessageTypeRelease, macA, ci("192.0.2.100")),
		msg(dhcpv4.MessageTypeInform, macA, ci("192.0.2.50")),
		msg(dhcpv4.MessageTypeDiscover, macS, gi("198.51.100.1"), cid(1, 2, 3)),
		msg(dhcpv4.MessageTypeRequest, macS, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionFQDN, []byte{4, 0, 0, 3, 'a', 'b', 'c', 0}))),
	}
}

// FuzzReadLeases must never panic on any lease file.
func FuzzReadLeases(f *testing.F) {
	for _, s := range []string{
		"1700003600 02:00:00:00:00:01 192.0.2.100 laptop 01:02:00:00:00:00:01\n",
		"lease 192.0.2.1 {\n ends epoch 5;\n binding state active;\n uid \"\\001\\x02a\";\n hardware ethernet 02:00:00:00:00:01;\n}\n",
		`{"format":"gatewayd","version":1,"leases":[{"address":"192.0.2.1","mac":"02:00:00:00:00:01","expires":"2030-01-01T00:00:00Z","state":"active"}]}`,
		"address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n192.0.2.100,02:00:00:00:00:31,01:02,3600,1796170435,1,0,0,a&#x2cb,0,\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lf, err := ReadLeaseFile(bytes.NewReader(b), time.Time{})
		leases := lf.Leases
		if err != nil {
			return
		}
		for _, l := range leases {
			bindingOf(l) // may refuse, must not panic
		}
	})
}

// FuzzDecodeRecord: a line either is refused or round-trips.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, testBinding(1)))
	f.Add([]byte("00000000 1.2.3.4 a 1 - - -\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		var buf [8][]byte
		got, want := splitFields(buf[:0], line), bytes.Fields(line)
		if len(want) <= len(buf) && !slices.EqualFunc(got, want, bytes.Equal) || len(want) > len(buf) && len(got) <= len(buf) {
			t.Fatalf("%q: fields %q, bytes.Fields %q", line, got, want)
		}
		b, ok := decodeRecord(line)
		if !ok {
			return
		}
		again, ok := decodeRecord(encodeRecord(nil, b))
		if !ok || *again != *b {
			t.Fatalf("%q decoded to %+v, which does not round-trip", line, b)
		}
	})
}

// FuzzReadKea: Kea's leases4.csv reader never panics, returns only IPv4
// leases, one per address, and accounts for every row it read.
func FuzzReadKea(f *testing.F) {
	if b, err := os.ReadFile("testdata/kea-leases4.csv"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname\n192.0.2.1,02:00:00:00:00:01,,0,5,1,0,0,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := readKea(b)
		if err != nil {
			return
		}
		lf := resolve(FormatKea, entries, time.Unix(1_700_000_000, 0))
		if len(lf.Leases)+len(lf.Skipped) != len(entries) {
			t.Fatalf("%d rows became %d leases and %d skipped", len(entries), len(lf.Leases), len(lf.Skipped))
		}
		seen := map[netip.Addr]bool{}
		for _, l := range lf.Leases {
			if !l.Address.Is4() || seen[l.Address] {
				t.Fatalf("lease %+v: not IPv4, or a second one of its address", l)
			}
			seen[l.Address] = true
			bindingOf(l) // may refuse, must not panic
		}
	})
}

// FuzzParse: the role's parser reads every packet as the insomniacslk/dhcp
// parser does (with END added when the options stop without it, as the
// role once did): both refuse it, or both read the same header fields and
// options.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s().ToBytes())
	}
	two := msg(dhcpv4.MessageTypeDiscover, macA)().ToBytes()
	two = append(two[:len(two)-1], optHostName, 2, 'a', 'b', 3, 1, 9, optHostName, 1, 'c', optEnd)
	f.Add(two)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p packet
		err := p.parse(b)
		lib, libErr := dhcpv4.FromBytes(b)
		if errors.Is(libErr, io.ErrUnexpectedEOF) {
			lib, libErr = dhcpv4.FromBytes(append(b[:len(b):len(b)], optEnd))
		}
		if (err == nil) != (libErr == nil) {
			t.Fatalf("ours: %v; the library's: %v", err, libErr)
		}
		if err != nil {
			return
		}
		if p.op != byte(lib.OpCode) || p.htype != byte(lib.HWType) || p.xid != [4]byte(lib.TransactionID) ||
			p.flags != lib.Flags || !bytes.Equal(p.chaddr, lib.ClientHWAddr) {
			t.Fatalf("header %+v, the library's %s", p, lib.Summary())
		}
		if ci, _ := netip.AddrFromSlice(lib.ClientIPAddr); u32Addr(p.ciaddr) != ci {
			t.Fatalf("ciaddr %s, the library's %s", u32Addr(p.ciaddr), ci)
		}
		if gi, _ := netip.AddrFromSlice(lib.GatewayIPAddr); u32Addr(p.giaddr) != gi {
			t.Fatalf("giaddr %s, the library's %s", u32Addr(p.giaddr), gi)
		}
		if p.messageType() != uint8(lib.MessageType()) {
			t.Fatalf("message type %d, the library's %d", p.messageType(), lib.MessageType())
		}
		for c := range 256 {
			v, ok := lib.Options[uint8(c)]
			if ok != p.opts.present(uint8(c)) || !bytes.Equal(v, p.opts.get(uint8(c))) {
				t.Fatalf("option %d: %x (%v), the library's %x (%v)", c, p.opts.get(uint8(c)), p.opts.present(uint8(c)), v, ok)
			}
		}
	})
}
