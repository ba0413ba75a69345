package dhcp

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// wireOption is one option instance as it appears on the wire.
type wireOption struct {
	code  uint8
	val   []byte
	field string // "options", "file" or "sname"
}

// parseWire reads a reply's options the way a client does: the options
// field, then, by option 52, file and sname (RFC 2132 §9.3), instances of
// one code concatenated (RFC 3396). It fails on anything malformed.
func parseWire(b []byte) (list []wireOption, opts map[uint8][]byte, err error) {
	if len(b) < fixedLen+cookieLen || !bytes.Equal(b[fixedLen:fixedLen+cookieLen], magicCookie[:]) {
		return nil, nil, fmt.Errorf("no magic cookie in %d bytes", len(b))
	}
	opts = map[uint8][]byte{}
	read := func(field string, area []byte, needEnd bool) error {
		for i := 0; i < len(area); {
			c := area[i]
			if c == optPad {
				i++
				continue
			}
			if c == optEnd {
				return nil
			}
			if i+2 > len(area) || i+2+int(area[i+1]) > len(area) {
				return fmt.Errorf("%s: option %d runs past the field", field, c)
			}
			v := area[i+2 : i+2+int(area[i+1])]
			list = append(list, wireOption{c, v, field})
			opts[c] = append(opts[c], v...)
			i += 2 + len(v)
		}
		if needEnd {
			return fmt.Errorf("%s: no END", field)
		}
		return nil
	}
	if err := read("options", b[fixedLen+cookieLen:], true); err != nil {
		return nil, nil, err
	}
	ov := opts[optOverload]
	if len(ov) == 1 && ov[0]&overloadFile != 0 {
		if err := read("file", b[108:236], true); err != nil {
			return nil, nil, err
		}
	}
	if len(ov) == 1 && ov[0]&overloadSname != 0 {
		if err := read("sname", b[44:108], true); err != nil {
			return nil, nil, err
		}
	}
	return list, opts, nil
}

// codes lists the codes of the options in wire order, each once.
func codes(list []wireOption) []uint8 {
	var out []uint8
	for _, o := range list {
		if !slices.Contains(out, o.code) {
			out = append(out, o.code)
		}
	}
	return out
}

func prl(codes ...uint8) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionParameterRequestList, codes))
}

func maxSize(n uint16) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionMaximumDHCPMessageSize, []byte{byte(n >> 8), byte(n)}))
}

// big is a pool option of n bytes.
func big(code uint8, n int, always bool) Option {
	return Option{Code: code, Value: bytes.Repeat([]byte{code}, n), Always: always}
}

func manyRoutes(n int) []Route {
	var out []Route
	for i := range n {
		out = append(out, Route{To: mustPrefix(fmt.Sprintf("10.%d.0.0/16", i)), Via: mustAddr("192.0.2.254")})
	}
	return out
}

func TestReplyOrderFollowsTheRequestList(t *testing.T) {
	hs := newHarness(t, testConfig())
	o := hs.send(msg(dhcpv4.MessageTypeDiscover, macA, prl(3, 1, 252))())
	list, _, err := parseWire(o.wire)
	if err != nil {
		t.Fatal(err)
	}
	got := codes(list)
	// 53, 54, 51 first; then the request list in its order; then the
	// options every client gets, by code.
	want := []uint8{53, 54, 51, 3, 1, 252, 6, 15, 28, 42, 58, 59}
	if !slices.Equal(got, want) {
		t.Errorf("options on the wire %v, want %v", got, want)
	}
	o = hs.send(msg(dhcpv4.MessageTypeDiscover, macB, prl(1, 3))())
	list, _, _ = parseWire(o.wire)
	if got := codes(list); !slices.Equal(got[:5], []uint8{53, 54, 51, 1, 3}) {
		t.Errorf("PRL [1 3]: options on the wire %v", got)
	}
}

func TestUnrequestedCustomOptions(t *testing.T) {
	c := testConfig(func(c *Config) {
		c.Pools[0].Options = []Option{{Code: 224, Value: []byte("asked")}, {Code: 225, Value: []byte("always"), Always: true}}
	})
	hs := newHarness(t, c)
	_, opts, err := parseWire(hs.send(msg(dhcpv4.MessageTypeDiscover, macA, prl(1, 3, 6))()).wire)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := opts[224]; ok {
		t.Error("an unrequested custom option was sent")
	}
	if string(opts[225]) != "always" {
		t.Errorf("an always option: %q", opts[225])
	}
	_, opts, _ = parseWire(hs.send(msg(dhcpv4.MessageTypeDiscover, macB, prl(224))()).wire)
	if string(opts[224]) != "asked" {
		t.Errorf("a requested custom option: %q", opts[224])
	}
	// Without a request list nothing custom is asked for.
	_, opts, _ = parseWire(hs.send(msg(dhcpv4.MessageTypeDiscover, macC)()).wire)
	if _, ok := opts[224]; ok {
		t.Error("a custom option was sent to a client without a request list")
	}
}

// plain leaves the first pool with a mask, a router and a DNS server.
func plain(c *Config) {
	p := &c.Pools[0]
	p.Domain, p.NTP, p.Broadcast, p.Routes, p.Options = "", nil, netip.Addr{}, nil, nil
}

// logTo is a logger writing what the role logs at Info and above, as text, to w.
func logTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func TestRepliesFitTheClient(t *testing.T) {
	two := func(c *Config) {
		plain(c)
		c.Pools[0].Options = []Option{big(224, 255, true), big(225, 255, true)}
	}
	four := func(c *Config) {
		c.Pools[0].Options = []Option{big(224, 255, true), big(225, 255, true), big(226, 255, true), big(227, 255, true)}
		c.Pools[0].Routes = manyRoutes(40)
	}
	all := prl(1, 3, 6, 15, 121, 224, 225, 226, 227)
	twoSent := []uint8{1, 3, 6, 51, 53, 54, 224, 225}
	fourSent := []uint8{1, 3, 6, 15, 51, 53, 54, 121, 224, 225, 226, 227}
	tests := []struct {
		name    string
		edit    func(*Config)
		mods    []dhcpv4.Modifier
		limit   int
		sent    []uint8 // the options the pool has for the client
		dropped []uint8 // those of them that do not fit
	}{
		{"two 255-byte options, no option 57", two, []dhcpv4.Modifier{all}, 576, twoSent, []uint8{225}},
		{"two 255-byte options, option 57 below 576", two, []dhcpv4.Modifier{all, maxSize(300)}, 576, twoSent, []uint8{225}},
		{"two 255-byte options, option 57 1500", two, []dhcpv4.Modifier{all, maxSize(1500)}, 1500, twoSent, nil},
		// 121 is longer than what is left; 224 is not.
		{"four and 40 routes, 576", four, []dhcpv4.Modifier{all}, 576, fourSent, []uint8{121, 225, 226, 227}},
		{"four and 40 routes, 1500", four, []dhcpv4.Modifier{all, maxSize(1500)}, 1500, fourSent, []uint8{227}},
		{"four and 40 routes, option 57 above the MTU", four, []dhcpv4.Modifier{all, maxSize(9000)}, 1500, fourSent, []uint8{227}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, testConfig(tc.edit))
			var logs strings.Builder
			hs.h.log = logTo(&logs)
			for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest} {
				mods := tc.mods
				if mt == dhcpv4.MessageTypeRequest {
					mods = append(slices.Clone(mods), wantIP("192.0.2.100"), sid(srv))
				}
				o := hs.send(msg(mt, macA, mods...)())
				if o.reply == nil {
					t.Fatalf("%s: no reply: %s", mt, o.why)
				}
				if n := len(o.wire) + ipUDPHeaders; n > tc.limit {
					t.Errorf("%s: %d bytes on the wire, the client takes %d", mt, n, tc.limit)
				}
				_, opts, err := parseWire(o.wire)
				if err != nil {
					t.Fatalf("%s: %v", mt, err)
				}
				var dropped []uint8
				for _, c := range tc.sent {
					if _, ok := opts[c]; !ok {
						dropped = append(dropped, c)
					} else if _, ok := o.reply.Options[c]; !ok {
						t.Errorf("%s: option %d sent but missing from the reply", mt, c)
					}
				}
				if !slices.Equal(dropped, tc.dropped) {
					t.Errorf("%s: dropped %v, want %v", mt, dropped, tc.dropped)
				}
				for _, c := range tc.dropped {
					if !strings.Contains(logs.String(), fmt.Sprintf("option=%d mac=02:00:00:00:00:01", c)) {
						t.Errorf("no log line names option %d and the client:\n%s", c, logs.String())
					}
				}
				if r, ok := opts[121]; ok && len(r) > 255 {
					// RFC 3396: the long option goes out as several instances.
					list, _, _ := parseWire(o.wire)
					n := 0
					for _, w := range list {
						if w.code == 121 {
							n++
						}
					}
					if n != 2 {
						t.Errorf("%s: 121 of %d bytes in %d instances, want 2", mt, len(r), n)
					}
				}
			}
			// A retransmission is not logged again.
			before := strings.Count(logs.String(), "dropped")
			hs.send(msg(dhcpv4.MessageTypeDiscover, macA, tc.mods...)())
			if after := strings.Count(logs.String(), "dropped"); after != before {
				t.Errorf("the same drop was logged again: %d lines, then %d", before, after)
			}
		})
	}
}

func TestOverloadUsesFileAndSname(t *testing.T) {
	// In 576 bytes the options field takes the head and 224; 225 is too
	// long for it and goes to file, 226 then fits only in sname.
	hs := newHarness(t, testConfig(func(c *Config) {
		plain(c)
		c.Pools[0].Options = []Option{big(224, 250, true), big(225, 120, true), big(226, 50, true)}
	}))
	o := hs.send(msg(dhcpv4.MessageTypeDiscover, macA, prl(224, 225, 226))())
	list, opts, err := parseWire(o.wire)
	if err != nil {
		t.Fatal(err)
	}
	where := map[uint8]string{}
	for _, w := range list {
		where[w.code] = w.field
	}
	if where[224] != "options" || where[225] != "file" || where[226] != "sname" {
		t.Errorf("fields %v; want 224 in options, 225 in file, 226 in sname", where)
	}
	if opts[optOverload][0] != overloadFile|overloadSname {
		t.Errorf("option 52 = %v", opts[optOverload])
	}
	if list[0].code != optMessageType || list[1].code != optOverload {
		t.Errorf("the reply starts with %v", codes(list)[:2])
	}
	if n := len(o.wire) + ipUDPHeaders; n > minMessage {
		t.Errorf("%d bytes", n)
	}
}

func TestRelayAgentInformationStaysLast(t *testing.T) {
	hs := newHarness(t, testConfig())
	o := hs.send(msg(dhcpv4.MessageTypeDiscover, macA, gi("198.51.100.1"), prl(3, 1),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 3, 'p', '0', '1'})))())
	list, _, err := parseWire(o.wire)
	if err != nil {
		t.Fatal(err)
	}
	if last := list[len(list)-1].code; last != optRelayAgentInfo {
		t.Errorf("last option %d, want 82: %v", last, codes(list))
	}
}

func TestPoolFits(t *testing.T) {
	p := testConfig().Pools[0]
	if got := p.Fits(576); got != nil {
		t.Errorf("the seed pool overflows 576 bytes: %v", got)
	}
	c := testConfig(plain)
	p = c.Pools[0]
	p.Options = []Option{big(224, 255, false), big(225, 255, false)}
	if got := p.Fits(576); !slices.Equal(got, []uint8{225}) {
		t.Errorf("two 255-byte options in 576: %v, want [225]", got)
	}
	if got := p.Fits(1500); got != nil {
		t.Errorf("two 255-byte options in 1500: %v", got)
	}
}

func TestReplyLimit(t *testing.T) {
	for _, tc := range []struct {
		mods []dhcpv4.Modifier
		want int
	}{
		{nil, 576}, {[]dhcpv4.Modifier{maxSize(100)}, 576}, {[]dhcpv4.Modifier{maxSize(1000)}, 1000},
		{[]dhcpv4.Modifier{maxSize(65535)}, 1500},
		{[]dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionMaximumDHCPMessageSize, []byte{9}))}, 576},
	} {
		var p packet
		if err := p.parse(msg(dhcpv4.MessageTypeDiscover, macA, tc.mods...)().ToBytes()); err != nil {
			t.Fatal(err)
		}
		if got := replyLimit(&p); got != tc.want {
			t.Errorf("limit %d, want %d", got, tc.want)
		}
	}
}
