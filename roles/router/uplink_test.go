package router

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/bpf"
)

func staticUplink() *Config {
	return &Config{Interface: "eth1", Routes: []Route{rt("198.18.0.0/15 via 192.168.1.250 dev eth1")},
		Uplink: &Uplink{Interface: "eth0", Address: netip.MustParsePrefix("203.0.113.2/24"), Gateway: netip.MustParseAddr("203.0.113.1")}}
}

func TestConfigCheck(t *testing.T) {
	edit := func(f func(c *Config)) *Config { c := staticUplink(); f(c); return c }
	if err := staticUplink().check(); err != nil {
		t.Errorf("a static uplink: %v", err)
	}
	if err := (&Config{Interface: "eth1", Uplink: &Uplink{Interface: "eth0", DHCP: true}}).check(); err != nil {
		t.Errorf("a DHCP uplink: %v", err)
	}
	for name, c := range map[string]*Config{
		"no interface":            {Routes: []Route{rt("default via 192.168.1.254 dev eth1")}},
		"uplink without NIC":      edit(func(c *Config) { c.Uplink.Interface = "" }),
		"uplink on the alias NIC": edit(func(c *Config) { c.Uplink.Interface = "eth1" }),
		"DHCP and static":         edit(func(c *Config) { c.Uplink.DHCP = true }),
		"static without gateway":  edit(func(c *Config) { c.Uplink.Gateway = netip.Addr{} }),
		"IPv6 address":            edit(func(c *Config) { c.Uplink.Address = netip.MustParsePrefix("2001:db8::2/64") }),
		"gateway outside":         edit(func(c *Config) { c.Uplink.Gateway = netip.MustParseAddr("198.51.100.1") }),
		"two default routes":      edit(func(c *Config) { c.Routes = append(c.Routes, rt("default via 192.168.1.254 dev eth1")) }),
	} {
		if err := c.check(); err == nil || !strings.HasPrefix(err.Error(), "router config: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestDesiredWithUplink: the uplink gives the default route on its own
// interface, promote_secondaries and accept_ra there; the alias NIC's values
// stay.
func TestDesiredWithUplink(t *testing.T) {
	c := staticUplink()
	w := wan{Interface: "eth0", Address: c.Uplink.Address, Gateway: c.Uplink.Gateway}
	var routes []string
	for _, r := range wantedRoutes(c, w) {
		routes = append(routes, r.String())
	}
	if want := []string{"198.18.0.0/15 via 192.168.1.250 dev eth1", "default via 203.0.113.1 dev eth0"}; !slices.Equal(routes, want) {
		t.Errorf("routes %q, want %q", routes, want)
	}
	if up := upstream(c, w); up != "203.0.113.1" {
		t.Errorf("upstream %q", up)
	}
	if up := upstream(c, wan{Interface: "eth0"}); up != "" {
		t.Errorf("upstream before the lease: %q", up)
	}
	if got := wantedAddrs(w); !slices.Equal(got, []ownedAddr{{Interface: "eth0", Address: c.Uplink.Address}}) {
		t.Errorf("addresses %v", got)
	}
	for ra, want := range map[bool]string{false: "0", true: "2"} {
		c.Uplink.AcceptRA = ra
		s := wantedSysctls(c)
		if last := s[len(s)-1]; last.name() != "net.ipv6.conf.eth0.accept_ra" || last.Value != want {
			t.Errorf("AcceptRA %v: %s=%s", ra, last.name(), last.Value)
		}
		if len(s) != len(forwardingSysctls("eth1"))+2 || s[len(s)-2] != (sysctl{"net/ipv4/conf/eth0/promote_secondaries", "1"}) {
			t.Errorf("sysctls %v", s)
		}
	}
	for key, dev := range map[string]string{"net/ipv4/conf/eth1.10/rp_filter": "eth1.10", "net/ipv6/conf/eth0/accept_ra": "eth0",
		"net/ipv4/conf/all/send_redirects": "", "net/ipv4/ip_forward": ""} {
		if got := sysctlInterface(key); got != dev {
			t.Errorf("sysctlInterface(%s) = %q, want %q", key, got, dev)
		}
	}
}

func TestPlanRoutesPending(t *testing.T) {
	def := rt("default via 192.168.1.254 dev eth1")
	for _, tc := range []struct {
		name    string
		kernel  func(k *kernelState)
		owned   []Route
		steps   []string
		pending string // the reason, "" for none
	}{
		{name: "reachable: added", steps: []string{"ip route add " + def.String()}},
		{name: "link absent", kernel: func(k *kernelState) { delete(k.links, "eth1") }, pending: "interface eth1 is absent"},
		{name: "link down", kernel: func(k *kernelState) { k.links["eth1"] = link{index: 2}; delete(k.onLink, "eth1") }, pending: "interface eth1 is down"},
		{name: "no address in the subnet", kernel: func(k *kernelState) { k.onLink["eth1"] = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")} },
			pending: "192.168.1.254 is on no subnet of eth1 yet"},
		{name: "present: nothing, reachable or not", kernel: func(k *kernelState) {
			k.routes[def.To] = kernelRoute{Route: def, proto: routeProto}
			delete(k.onLink, "eth1")
		}, owned: []Route{def}},
		{name: "the owned route it replaces goes", kernel: func(k *kernelState) {
			old := rt("default via 192.168.1.253 dev eth2")
			k.routes[old.To] = kernelRoute{Route: old, proto: routeProto}
			delete(k.onLink, "eth1")
		}, owned: []Route{rt("default via 192.168.1.253 dev eth2")},
			steps: []string{"ip route del default via 192.168.1.253 dev eth2"}, pending: "192.168.1.254 is on no subnet of eth1 yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := wire()
			if tc.kernel != nil {
				tc.kernel(k)
			}
			steps, pending, conflicts := planRoutes([]Route{def}, k, &record{Routes: tc.owned})
			var got []string
			for _, s := range steps {
				got = append(got, s.String())
			}
			if !slices.Equal(got, tc.steps) || len(conflicts) > 0 {
				t.Errorf("steps %q conflicts %v, want %q", got, conflicts, tc.steps)
			}
			switch {
			case tc.pending == "" && len(pending) > 0:
				t.Errorf("pending %v", pending)
			case tc.pending != "" && (len(pending) != 1 || pending[0].What != "ip route add "+def.String() || !strings.HasPrefix(pending[0].Reason, tc.pending)):
				t.Errorf("pending %v, want %q", pending, tc.pending)
			}
		})
	}
	// A conflict is an error even while the next hop is unreachable.
	k := wire()
	k.routes[def.To] = kernelRoute{Route: rt("default via 10.9.9.9 dev eth2"), proto: 3}
	delete(k.links, "eth1")
	if _, pending, conflicts := planRoutes([]Route{def}, k, &record{}); len(conflicts) != 1 || len(pending) != 0 {
		t.Errorf("conflicts %v pending %v", conflicts, pending)
	}
}

func TestPlanAddrs(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wan0 := ownedAddr{Interface: "eth0", Address: netip.MustParsePrefix("203.0.113.2/24")}
	old := ownedAddr{Interface: "eth0", Address: netip.MustParsePrefix("203.0.113.3/24")}
	static := wan{Interface: "eth0", Address: wan0.Address}
	k := wire()
	k.links["eth0"] = link{index: 9, up: true}
	adds, dels, pending := planAddrs(static, now, k, &record{Addresses: []ownedAddr{old}})
	if len(adds) != 1 || adds[0].String() != "ip addr add 203.0.113.2/24 dev eth0" || len(dels) != 0 || len(pending) != 0 {
		t.Errorf("missing: adds %v dels %v pending %v", adds, dels, pending)
	}
	k.addrs["eth0"] = []netip.Prefix{wan0.Address, old.Address}
	adds, dels, _ = planAddrs(static, now, k, &record{Addresses: []ownedAddr{old}})
	if len(adds) != 0 || len(dels) != 1 || dels[0].String() != "ip addr del 203.0.113.3/24 dev eth0" {
		t.Errorf("present, not owned; old owned: adds %v dels %v", adds, dels)
	}
	delete(k.links, "eth0")
	delete(k.addrs, "eth0")
	adds, dels, pending = planAddrs(static, now, k, &record{Addresses: []ownedAddr{old}})
	if len(adds) != 0 || len(dels) != 0 || len(pending) != 1 || pending[0].Reason != "interface eth0 is absent" {
		t.Errorf("absent: adds %v dels %v pending %v", adds, dels, pending)
	}
}

// TestAddrLifetimes: a leased address lives as long as the lease, in the
// kernel too; a renewal refreshes it, a static address is permanent, and
// an address someone else added keeps the lifetime it has.
func TestAddrLifetimes(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := ownedAddr{Interface: "eth0", Address: netip.MustParsePrefix("203.0.113.51/24")}
	leased := wan{Interface: "eth0", Address: a.Address, Expires: now.Add(90*time.Second - time.Millisecond)}
	k := wire()
	k.links["eth0"] = link{index: 9, up: true}
	mine := &record{Addresses: []ownedAddr{a}}
	plan := func(w wan, rec *record) string {
		adds, _, _ := planAddrs(w, now, k, rec)
		var out []string
		for _, s := range adds {
			out = append(out, s.String())
		}
		return strings.Join(out, "; ")
	}
	if got := plan(leased, &record{}); got != "ip addr add 203.0.113.51/24 dev eth0 valid_lft 90 preferred_lft 90" {
		t.Errorf("a leased address is added as %q", got)
	}
	k.addrs["eth0"] = []netip.Prefix{a.Address}
	for _, tc := range []struct {
		name string
		has  uint32
		w    wan
		rec  *record
		want string
	}{
		{"counting down with the lease", 88, leased, mine, ""},
		{"renewed", 30, leased, mine, "ip addr change 203.0.113.51/24 dev eth0 valid_lft 90 preferred_lft 90"},
		{"permanent, now leased", permanent, leased, mine, "ip addr change 203.0.113.51/24 dev eth0 valid_lft 90 preferred_lft 90"},
		{"leased, now static", 30, wan{Interface: "eth0", Address: a.Address}, mine, "ip addr change 203.0.113.51/24 dev eth0 valid_lft forever preferred_lft forever"},
		{"static", permanent, wan{Interface: "eth0", Address: a.Address}, mine, ""},
		{"not gatewayd's", 30, leased, &record{}, ""},
	} {
		k.valid = map[ownedAddr]uint32{a: tc.has}
		if got := plan(tc.w, tc.rec); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := lifetime(now.Add(-time.Minute), now); got != 1 {
		t.Errorf("an expired lease's lifetime %d, want 1", got)
	}
}

// TestDeleteNeedsPromotion: an owned address is deleted only where
// promote_secondaries was seen at 1; elsewhere the delete waits, saying why.
func TestDeleteNeedsPromotion(t *testing.T) {
	sys := fakeProc(t, map[string]string{"net/ipv4/conf/eth0/promote_secondaries": "1", "net/ipv4/conf/eth2/promote_secondaries": "0"})
	old := func(dev string) ownedAddr {
		return ownedAddr{Interface: dev, Address: netip.MustParsePrefix("203.0.113.3/24")}
	}
	r := &Router{sys: sys, rec: &record{Addresses: []ownedAddr{old("eth0"), old("eth2")}}}
	r.checkPromoted(nil)
	ok, held := r.deletable([]addrStep{{op: "del", addr: old("eth0")}, {op: "del", addr: old("eth2")}})
	if len(ok) != 1 || ok[0].addr != old("eth0") || len(held) != 1 || held[0].What != "ip addr del 203.0.113.3/24 dev eth2" ||
		!strings.Contains(held[0].Reason, "net.ipv4.conf.eth2.promote_secondaries is not 1") {
		t.Errorf("deletable: %v, held %+v", ok, held)
	}
	if !r.stillPromoting("net/ipv4/conf/eth2/promote_secondaries") || r.stillPromoting("net/ipv4/conf/eth1/promote_secondaries") {
		t.Error("stillPromoting")
	}
}

// ack is a DHCPACK for 203.0.113.51 from 203.0.113.1, with mods.
func ack(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 0xe, 1}),
		dhcpv4.WithYourIP(net.IPv4(203, 0, 113, 51)), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(203, 0, 113, 1))),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(203, 0, 113, 1))),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(203, 0, 113, 53), net.IPv4(203, 0, 113, 54))),
		dhcpv4.WithLeaseTime(3600),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLease(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := newLease("eth0", ack(t), at)
	if err != nil {
		t.Fatal(err)
	}
	if l.addr != netip.MustParsePrefix("203.0.113.51/24") || l.gateway != netip.MustParseAddr("203.0.113.1") || l.server != netip.MustParseAddr("203.0.113.1") ||
		!slices.Equal(l.dns, []netip.Addr{netip.MustParseAddr("203.0.113.53"), netip.MustParseAddr("203.0.113.54")}) {
		t.Errorf("lease %+v", l)
	}
	if l.t1 != at.Add(30*time.Minute) || l.t2 != at.Add(3150*time.Second) || l.expires != at.Add(time.Hour) {
		t.Errorf("default times: t1 %v t2 %v expires %v", l.t1, l.t2, l.expires)
	}
	l, err = newLease("eth0", ack(t, dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(100*time.Second)), dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(200*time.Second))), at)
	if err != nil || l.t1 != at.Add(100*time.Second) || l.t2 != at.Add(200*time.Second) {
		t.Errorf("given times: %+v %v", l, err)
	}
	l, err = newLease("eth0", ack(t, dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(2*time.Hour))), at)
	if err != nil || !l.t1.Before(l.t2) || !l.t2.Before(l.expires) {
		t.Errorf("a T1 past the lease: %+v %v", l, err)
	}
	// RFC 3442: with option 121 the default route comes from it, not option 3.
	_, dflt, _ := net.ParseCIDR("0.0.0.0/0")
	_, other, _ := net.ParseCIDR("10.0.0.0/8")
	l, err = newLease("eth0", ack(t, dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
		&dhcpv4.Route{Dest: other, Router: net.IPv4(203, 0, 113, 7)}, &dhcpv4.Route{Dest: dflt, Router: net.IPv4(203, 0, 113, 9)}))), at)
	if err != nil || l.gateway != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("option 121: %+v %v", l, err)
	}
	for name, bad := range map[string]*dhcpv4.DHCPv4{
		"a NAK":            ack(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak)),
		"no address":       ack(t, dhcpv4.WithYourIP(net.IPv4zero)),
		"no lease time":    ack(t, dhcpv4.WithoutOption(dhcpv4.OptionIPAddressLeaseTime)),
		"no server":        ack(t, dhcpv4.WithoutOption(dhcpv4.OptionServerIdentifier)),
		"a broadcast addr": ack(t, dhcpv4.WithYourIP(net.IPv4bcast)),
		"a /0 mask":        ack(t, dhcpv4.WithNetmask(net.CIDRMask(0, 32))),
		"a /7 mask":        ack(t, dhcpv4.WithNetmask(net.CIDRMask(7, 32))),
	} {
		if _, err := newLease("eth0", bad, at); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// The log says why (the client logs the error of a refused ACK).
	if _, err := newLease("eth0", ack(t, dhcpv4.WithNetmask(net.CIDRMask(0, 32))), at); err == nil || !strings.Contains(err.Error(), "/0 is shorter than /8") {
		t.Errorf("a /0 mask: %v", err)
	}
	if l, err := newLease("eth0", ack(t, dhcpv4.WithNetmask(net.CIDRMask(8, 32))), at); err != nil || l.addr.Bits() != 8 {
		t.Errorf("a /8 mask: %+v %v", l, err)
	}
}

func TestNextAction(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := newLease("eth0", ack(t), at)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		l         *lease
		rebooting bool
		now       time.Time
		act       action
		at        time.Time
	}{
		{"no lease", nil, false, at, actDiscover, at},
		{"bound", l, false, at.Add(time.Minute), actWait, l.t1},
		{"restarted", l, true, at.Add(time.Minute), actReboot, at.Add(time.Minute)},
		{"past T1", l, false, l.t1, actRenew, l.t1},
		{"past T2", l, false, l.t2, actRebind, l.t2},
		{"expired", l, true, l.expires, actExpire, l.expires},
	} {
		if act, when := nextAction(tc.l, tc.rebooting, tc.now); act != tc.act || !when.Equal(tc.at) {
			t.Errorf("%s: %v at %v, want %v at %v", tc.name, act, when, tc.act, tc.at)
		}
	}
	for _, tc := range []struct{ left, want time.Duration }{
		{time.Hour, 30 * time.Minute}, {90 * time.Second, time.Minute}, {20 * time.Second, 20 * time.Second},
	} {
		if got := retryWait(at, at.Add(tc.left)); got != tc.want {
			t.Errorf("retryWait with %v left = %v, want %v", tc.left, got, tc.want)
		}
	}
}

// TestRecordLease: a lease round-trips through the record; version 1 and 2
// records still load, a newer one is refused; a damaged lease is refused.
func TestRecordLease(t *testing.T) {
	dir := t.TempDir()
	r, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newLease("eth0", ack(t), time.Now().Round(0))
	if err != nil {
		t.Fatal(err)
	}
	l.serverMAC = net.HardwareAddr{2, 0, 0, 0, 0xe, 0xfe}
	r.Lease = l.stored()
	r.rememberAddr(ownedAddr{Interface: "eth0", Address: l.addr})
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	back, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Lease.lease()
	if err != nil || !back.Lease.equal(r.Lease) || got.addr != l.addr || !got.expires.Equal(l.expires) || !slices.Equal(back.Addresses, r.Addresses) ||
		!bytes.Equal(got.serverMAC, l.serverMAC) {
		t.Errorf("loaded %+v (%v), saved %+v", back, err, r)
	}
	for text, ok := range map[string]bool{
		`{"version":1,"routes":[{"to":"0.0.0.0/0","via":"192.168.1.254","interface":"eth1"}],"sysctls":[]}`:                  true,
		`{"version":2,"routes":[],"sysctls":[]}`:                                                                             true,
		`{"version":4,"routes":[],"sysctls":[]}`:                                                                             false,
		`{"version":2,"routes":[],"sysctls":[],"lease":{"interface":"eth0","ack":"AAAA","acquired":"2026-01-01T00:00:00Z"}}`: false,
		`{"version":2,"routes":[],"addresses":[{"interface":"eth0","address":"2001:db8::1/64"}],"sysctls":[]}`:               false,
		strings.Replace(string(mustJSON(t, r)), `"server_mac": "02:00:00:00:0e:fe"`, `"server_mac": "02:00"`, 1):             false,
	} {
		if err := os.WriteFile(filepath.Join(dir, recordFile), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadRecord(dir); (err == nil) != ok || err != nil && !strings.Contains(err.Error(), recordFile) {
			t.Errorf("%s: %v", text, err)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDHCPFilter: the socket's BPF program lets through DHCP replies to the
// client port only.
func TestDHCPFilter(t *testing.T) {
	var prog []bpf.Instruction
	for _, ri := range dhcpFilter {
		prog = append(prog, ri.Disassemble())
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	// An IPv4 header of 20 bytes (checksums do not matter here), UDP from
	// port 67 to dport, a payload.
	packet := func(proto byte, dport uint16) []byte {
		return []byte{0x45, 0, 0, 33, 0, 0, 0x40, 0, 64, proto, 0, 0, 203, 0, 113, 1, 255, 255, 255, 255,
			0, 67, byte(dport >> 8), byte(dport), 0, 13, 0, 0, 'o', 'f', 'f', 'e', 'r'}
	}
	reply := packet(17, 68)
	fragment := packet(17, 68)
	fragment[7] = 1 // fragment offset 8 bytes
	for name, tc := range map[string]struct {
		pkt  []byte
		pass bool
	}{"reply to 68": {reply, true}, "to 67": {packet(17, 67), false}, "a fragment": {fragment, false}, "tcp": {packet(6, 68), false}} {
		n, err := vm.Run(tc.pkt)
		if err != nil || (n > 0) != tc.pass {
			t.Errorf("%s: kept %d bytes (%v), want pass=%v", name, n, err, tc.pass)
		}
	}
}

// TestStatusJSON pins the shape `gatewayd status --json` shows: zero WAN
// fields left out while there is no lease, pending as what and why.
func TestStatusJSON(t *testing.T) {
	st := Status{Held: true, Interface: "eth1", Routes: []string{},
		Uplink:  &UplinkStatus{Interface: "eth0", DHCP: &LeaseStatus{State: stateInit}},
		Pending: []Pending{{What: "dhcp lease on eth0", Reason: "interface eth0 is down"}}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"held":true,"interface":"eth1","forwarding":false,"routes":[],` +
		`"uplink":{"interface":"eth0","owned":false,"dhcp":{"state":"init","renewals":0}},` +
		`"pending":[{"what":"dhcp lease on eth0","reason":"interface eth0 is down"}]}`
	if string(b) != want {
		t.Errorf("status JSON\n%s\nwant\n%s", b, want)
	}
}
