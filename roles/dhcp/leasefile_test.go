package dhcp

import (
	"bytes"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadLeases(t *testing.T) {
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := netip.MustParseAddr
	tests := []struct {
		file   string
		format string
		want   []Lease
	}{
		{"testdata/dnsmasq.leases", FormatDnsmasq, []Lease{
			{Address: a("192.0.2.100"), MAC: "02:00:00:00:00:01", ClientID: "01:02:00:00:00:00:01", Hostname: "laptop", Expires: time.Unix(1700003600, 0).UTC(), State: StateActive},
			{Address: a("192.0.2.101"), MAC: "02:00:00:00:00:02", Expires: time.Unix(1700007200, 0).UTC(), State: StateActive},
			{Address: a("192.0.2.102"), MAC: "02:00:00:00:00:03", Hostname: "Printer_2", Expires: neverExpires, State: StateActive},
		}},
		{"testdata/dhcpd.leases", FormatISC, []Lease{
			{Address: a("192.0.2.100"), MAC: "02:00:00:00:00:01", ClientID: "01:02:00:00:00:00:01", Hostname: "laptop", Expires: ts("2023-11-14T22:13:20Z"), State: StateActive},
			{Address: a("192.0.2.102"), MAC: "02:00:00:00:00:03", ClientID: "01:02:00:00:00:00:03", Hostname: `desk; with "quotes"`, Expires: neverExpires, State: StateActive},
			{Address: a("192.0.2.103"), MAC: "02:00:00:00:00:05", Expires: time.Unix(1700009999, 0).UTC(), State: StateActive},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			f, err := os.Open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			lf, err := ReadLeaseFile(f, time.Time{})
			got, format := lf.Leases, lf.Format
			if err != nil || format != tc.format {
				t.Fatalf("ReadLeases: format %q, err %v", format, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("leases:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestExportRoundTrip(t *testing.T) {
	in := []Lease{
		{Address: netip.MustParseAddr("192.0.2.100"), MAC: "02:00:00:00:00:01", Hostname: "pc", Expires: time.Unix(1700003600, 0).UTC(), State: StateActive},
		{Address: netip.MustParseAddr("192.0.2.101"), MAC: "02:00:00:00:00:02", Expires: time.Unix(1700000600, 0).UTC(), State: StateDeclined},
	}
	var buf bytes.Buffer
	if err := Export(&buf, in); err != nil {
		t.Fatal(err)
	}
	lf, err := ReadLeaseFile(&buf, time.Time{})
	got, format := lf.Leases, lf.Format
	if err != nil || format != FormatGatewayd || !reflect.DeepEqual(got, in) {
		t.Errorf("round trip: %q %v\n got %+v\nwant %+v", format, err, got, in)
	}
}

func TestReadLeasesErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"dnsmasq short line", "1700000000 02:00:00:00:00:01\n", "line 1"},
		{"dnsmasq bad mac", "1700000000 zz 192.0.2.1 * *\n", "MAC"},
		{"isc bad address", "lease 192.0.2.x {\n}\n", "lease address"},
		{"isc unclosed", "lease 192.0.2.1 {\n binding state active;\n", "no closing brace"},
		{"isc bad time", "lease 192.0.2.1 {\n ends 2 2023-11-14;\n}\n", "ends"},
		{"isc unterminated string", "lease 192.0.2.1 {\n client-hostname \"x;\n}\n", "unterminated"},
		{"json wrong format", `{"format":"other","version":1,"leases":[]}`, "format"},
		{"json unknown field", `{"format":"gatewayd","version":1,"leases":[],"x":1}`, "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadLeaseFile(strings.NewReader(tc.text), time.Time{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestImport(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{StateDir: dir, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	f, _ := os.Open("testdata/dnsmasq.leases")
	lf, err := ReadLeaseFile(f, time.Time{})
	leases, _ := lf.Leases, lf.Format
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Import(leases)
	if err != nil || n != 3 {
		t.Fatalf("Import: %d, %v", n, err)
	}
	// A conflicting lease is skipped and named; an invalid one refuses all.
	n, err = s.Import([]Lease{{Address: netip.MustParseAddr("192.0.2.100"), MAC: "02:00:00:00:00:09", Expires: now.Add(time.Hour), State: StateActive}})
	if n != 0 || err == nil || !strings.Contains(err.Error(), "already leased here") {
		t.Errorf("conflicting import: %d, %v", n, err)
	}
	n, err = s.Import([]Lease{{Address: netip.MustParseAddr("192.0.2.120"), Expires: now.Add(time.Hour)}})
	if n != 0 || err == nil || !strings.Contains(err.Error(), "192.0.2.120") {
		t.Errorf("invalid import: %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = New(Options{StateDir: dir, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.now = func() time.Time { return now }
	got := s.Leases()
	if len(got) != 3 || got[0].Hostname != "laptop" || got[2].Hostname != "printer-2" || got[0].ClientID != "01:02:00:00:00:00:01" {
		t.Errorf("leases after import and reopen: %+v", got)
	}
}

func TestWriteTable(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	leases := []Lease{
		{Address: netip.MustParseAddr("192.0.2.100"), MAC: "02:00:00:00:00:01", Hostname: "pc", Expires: now.Add(90 * time.Minute), State: StateActive},
		{Address: netip.MustParseAddr("192.0.2.101"), MAC: "02:00:00:00:00:02", ClientID: "01:02:00:00:00:00:02", Expires: neverExpires, State: StateActive},
		{Address: netip.MustParseAddr("192.0.2.102"), Expires: now.Add(-5 * time.Minute), State: StateDeclined},
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, leases, now); err != nil {
		t.Fatal(err)
	}
	want := `ADDRESS      MAC                CLIENT ID             HOSTNAME  STATE     ENDS
192.0.2.100  02:00:00:00:00:01  -                     pc        active    in 1h30m0s
192.0.2.101  02:00:00:00:00:02  01:02:00:00:00:00:02  -         active    never
192.0.2.102  -                  -                     -         declined  5m0s ago
`
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}
