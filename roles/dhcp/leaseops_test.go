package dhcp

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func skipped(f LeaseFile) map[string][]string {
	out := map[string][]string{}
	for _, s := range f.Skipped {
		out[s.Reason] = append(out[s.Reason], s.Address.String())
	}
	return out
}

func TestReadKea(t *testing.T) {
	data, err := os.ReadFile("testdata/kea-leases4.csv")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadLeaseFile(bytes.NewReader(data), time.Unix(1_796_000_100, 0))
	if err != nil || f.Format != FormatKea {
		t.Fatalf("format %q, %v", f.Format, err)
	}
	exp := time.Unix(1796170435, 0).UTC()
	a := netip.MustParseAddr
	want := []Lease{
		{Address: a("192.0.2.100"), MAC: "02:00:00:00:00:31", ClientID: "01:02:00:00:00:00:31", Hostname: "phonex", Expires: exp, State: StateActive},
		{Address: a("192.0.2.101"), MAC: "02:00:00:00:00:32", ClientID: "01:02:00:00:00:00:32", Expires: exp, State: StateActive},
		{Address: a("192.0.2.104"), Expires: exp, State: StateDeclined},
		{Address: a("192.0.2.106"), MAC: "02:00:00:00:00:37", Hostname: "a,b", Expires: exp, State: StateActive},
		{Address: a("192.0.2.107"), MAC: "02:00:00:00:00:38", Hostname: "forever", Expires: neverExpires, State: StateActive},
	}
	if !reflect.DeepEqual(f.Leases, want) {
		t.Errorf("leases:\n got %+v\nwant %+v", f.Leases, want)
	}
	wantSkipped := map[string][]string{
		SkipExpired: {"192.0.2.102"}, SkipDuplicate: {"192.0.2.103", "192.0.2.106"},
		SkipDeleted: {"192.0.2.103"}, SkipNotActive: {"192.0.2.105"},
	}
	if got := skipped(f); !reflect.DeepEqual(got, wantSkipped) {
		t.Errorf("skipped %v, want %v", got, wantSkipped)
	}
	for _, s := range f.Skipped {
		if s.Line == 0 {
			t.Errorf("skipped entry without its line: %+v", s)
		}
	}
}

func TestReadLeaseFileSkips(t *testing.T) {
	isc, _ := os.ReadFile("testdata/dhcpd.leases")
	isc = append(isc, "lease 192.0.2.120 {\n  hardware ethernet 02:00:00:00:00:09;\n}\n"...)
	f, err := ReadLeaseFile(bytes.NewReader(isc), time.Unix(1_700_004_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		SkipNotActive: {"192.0.2.101"}, SkipDuplicate: {"192.0.2.103"},
		SkipNoState: {"192.0.2.120"}, SkipExpired: {"192.0.2.100"},
	}
	if got := skipped(f); !reflect.DeepEqual(got, want) {
		t.Errorf("ISC skipped %v, want %v", got, want)
	}
	dm, _ := os.ReadFile("testdata/dnsmasq.leases")
	f, err = ReadLeaseFile(bytes.NewReader(dm), time.Time{})
	if err != nil || len(f.Leases) != 3 || len(f.Skipped) != 1 || f.Skipped[0].Reason != SkipNotIPv4 {
		t.Errorf("dnsmasq: %+v, %v", f, err)
	}
}

func TestReadLeaseFileRefusesTheUnknown(t *testing.T) {
	for name, text := range map[string]string{
		"prose":        "These are my leases, I think.\n",
		"empty":        "",
		"comments":     "# nothing here\n\n",
		"leases6":      "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len\n",
		"a hosts file": "127.0.0.1 localhost\n",
	} {
		_, err := ReadLeaseFile(strings.NewReader(text), time.Time{})
		if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "dnsmasq") || !strings.Contains(err.Error(), "leases4.csv") {
			t.Errorf("%s: %v, want ErrUnknownFormat naming the formats", name, err)
		}
	}
}

func TestOutsidePools(t *testing.T) {
	c := testConfig()
	a := netip.MustParseAddr
	leases := []Lease{{Address: a("192.0.2.100")}, {Address: a("192.0.2.10")}, {Address: a("192.0.2.200")}, {Address: a("198.51.100.15")}}
	if got := c.Outside(leases); len(got) != 1 || got[0].Address != a("192.0.2.200") {
		t.Errorf("outside the pools: %+v", got)
	}
}

func TestImportSaysHowManyWentIn(t *testing.T) {
	s, err := New(Options{StateDir: t.TempDir(), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	a := netip.MustParseAddr
	if _, err := s.Import([]Lease{{Address: a("192.0.2.100"), MAC: "02:00:00:00:00:01", Expires: now.Add(time.Hour), State: StateActive}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Import([]Lease{
		{Address: a("192.0.2.100"), MAC: "02:00:00:00:00:02", Expires: now.Add(time.Hour), State: StateActive},
		{Address: a("192.0.2.101"), MAC: "02:00:00:00:00:03", Expires: now.Add(time.Hour), State: StateActive},
		{Address: a("192.0.2.102"), MAC: "02:00:00:00:00:04", Expires: now.Add(-time.Hour), State: StateActive},
	})
	if n != 1 || err == nil || !strings.Contains(err.Error(), "imported 1 of 3") || !strings.Contains(err.Error(), "1 expired") {
		t.Errorf("partial import: %d, %v", n, err)
	}
}

func TestDeleteOffline(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	open := func() *Server {
		s, err := New(Options{StateDir: dir, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return now }
		return s
	}
	s := open()
	a := netip.MustParseAddr
	lease := func(addr, mac string) Lease {
		return Lease{Address: a(addr), MAC: mac, Expires: now.Add(time.Hour), State: StateActive}
	}
	if _, err := s.Import([]Lease{lease("192.0.2.100", "02:00:00:00:00:01"), lease("192.0.2.101", "02:00:00:00:00:02"),
		lease("192.0.2.102", "02:00:00:00:00:03"), lease("198.51.100.10", "02:00:00:00:00:03")}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Delete(a("192.0.2.100"), nil); err != nil || len(got) != 1 || got[0].MAC != "02:00:00:00:00:01" {
		t.Fatalf("delete by address: %+v, %v", got, err)
	}
	if got, err := s.Delete(netip.Addr{}, mustMAC("02:00:00:00:00:03")); err != nil || len(got) != 2 {
		t.Fatalf("delete by MAC: %+v, %v", got, err)
	}
	if got, err := s.Delete(a("192.0.2.199"), nil); err != nil || len(got) != 0 {
		t.Errorf("delete of nothing: %+v, %v", got, err)
	}
	if _, err := s.Delete(netip.Addr{}, nil); err == nil {
		t.Error("a delete of neither an address nor a MAC succeeded")
	}
	s.Close()
	s = open() // durable
	defer s.Close()
	if got := s.Leases(); len(got) != 1 || got[0].Address != a("192.0.2.101") {
		t.Errorf("after deletes and a restart: %+v", got)
	}
	if st := s.Status().Store; st.Recovered != "" {
		t.Errorf("the deletions read as damage: %q", st.Recovered)
	}
}

// TestDeleteWithdrawsTheName: on a serving role the name goes with the
// lease, and the address is free again.
func TestDeleteWithdrawsTheName(t *testing.T) {
	n := newTestNet(t)
	c := newPeerClient(t, n, "client", "02:00:00:00:11:01")
	off := c.discover(t)
	req, _ := dhcpv4.NewRequestFromOffer(off, dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptHostName("gone")))
	if _, _, err := c.mustReply(req, "255.255.255.255:67", dhcpv4.MessageTypeAck); err != nil {
		t.Fatal(err)
	}
	addr, _ := netip.AddrFromSlice(off.YourIPAddr.To4())
	got, err := n.srv.Delete(netip.Addr{}, c.mac)
	if err != nil || len(got) != 1 || got[0].Address != addr || got[0].Hostname != "gone" {
		t.Fatalf("delete: %+v, %v", got, err)
	}
	if n.names.get("gone").IsValid() {
		t.Error("the deleted lease's name is still published")
	}
	if _, ok := n.lease(addr.String()); ok {
		t.Error("the deleted lease is still listed")
	}
}
