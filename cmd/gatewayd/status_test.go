package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"gatewayd/daemon"
	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// sampleStatus is what a daemon sends, built from the parts' own types so
// the test breaks when a field it renders changes.
func sampleStatus(t *testing.T) json.RawMessage {
	applied := time.Date(2026, 12, 1, 10, 0, 0, 0, time.Local)
	confirmBy := applied.Add(9 * time.Minute)
	st := daemon.Status{
		Version: "0.1.0", Started: applied.Add(-(3*24*time.Hour + 4*time.Hour)),
		Host: "gw1", Interface: "eth1", Config: "/etc/gatewayd/gateway.toml", Generation: 3, Applied: applied,
		Confirm: &confirmBy,
		NIC:     &daemon.NICStatus{Present: true, Up: true},
		Closed:  []string{"eth0", "wg0"},
		Aliases: []daemon.AliasStatus{
			{Name: "router", Address: "192.168.1.1/24", Label: "eth1:0", Held: true, Present: true},
			{Name: "dhcp", Address: "192.168.1.2/24", Label: "eth1:1", Held: true, Present: true},
			{Name: "dns", Address: "192.168.1.3/24", Label: "eth1:2", Host: "gw2"},
			{Name: "lab", Address: "10.0.0.1/24", Label: "eth1:3", Held: true},
			{Name: "iot", Address: "10.0.1.1/24", Label: "eth1:4", Held: true, Waiting: "eth1 is down"},
		},
		Parts: map[string]any{
			"firewall": firewall.Counters{
				Aliases: []firewall.AliasCounters{
					{Alias: "router", In: firewall.Count{Packets: 3400, Bytes: 1258291}, Out: firewall.Count{Packets: 12, Bytes: 980}},
					{Alias: "dhcp", In: firewall.Count{Packets: 1_234_567, Bytes: 5 << 30}},
				},
				Zones: []firewall.ZoneCounters{
					{Zone: "lan", In: firewall.Count{Packets: 999, Bytes: 1023}, Forward: firewall.Count{Packets: 45_600, Bytes: 78 << 20}},
					{Zone: "upstream", Drop: firewall.Count{Packets: 40, Bytes: 12 << 10}},
				},
			},
			"router": router.Status{Held: true, Interface: "eth1", Upstream: "203.0.113.1", Forwarding: true,
				Uplink: &router.UplinkStatus{Interface: "eth0", Address: netip.MustParsePrefix("203.0.113.2/24"), Gateway: netip.MustParseAddr("203.0.113.1"), Owned: true,
					DHCP: &router.LeaseStatus{State: "bound", Server: netip.MustParseAddr("203.0.113.1"), DNS: []netip.Addr{netip.MustParseAddr("203.0.113.53")},
						Acquired: applied.Add(-time.Hour), Renew: applied.Add(5 * time.Hour), Rebind: applied.Add(9 * time.Hour), Expires: applied.Add(11 * time.Hour),
						Renewals: 2, Error: "no answer to REQUEST from 203.0.113.1"}},
				Routes:  []string{"default via 203.0.113.1 dev eth0 proto 177", "172.16.0.0/16 via 192.168.1.250 dev eth1 proto 177"},
				Pending: []router.Pending{{What: "ip route add 10.9.0.0/16 via 10.0.1.250 dev eth1 proto 177", Reason: "10.0.1.1/24 is not on eth1 yet"}}},
			"dhcp": dhcp.Status{Running: true, Interface: "eth1", Address: netip.MustParseAddr("192.168.1.2"),
				Pools:  []dhcp.PoolStatus{{Range: "192.168.1.100-192.168.1.199", Subnet: "192.168.1.0/24", Size: 100, Used: 13, Active: 12}},
				Active: 12, Declined: 1, Offers: 0,
				Pending: []dhcp.PendingReservation{{Address: netip.MustParseAddr("192.168.1.50"), MAC: "00:0d:61:0b:d9:a0",
					Holder: dhcp.Lease{Address: netip.MustParseAddr("192.168.1.50"), MAC: "00:0d:61:0b:d9:ff", Hostname: "laptop", State: "active", Expires: applied.Add(2 * time.Hour)}}},
				Counters: dhcp.Counters{
					In:   map[string]uint64{"request": 3456, "discover": 3401, "release": 2, "bootp": 1},
					Out:  map[string]uint64{"ack": 3455, "offer": 3401, "nak": 1},
					Naks: 1, Declines: 0, Malformed: 7, OptionsDropped: 4,
				},
				Store: dhcp.StoreStatus{Path: "/var/lib/gatewayd/leases.log", Records: 1234, Bytes: 98_304, Commits: 3456, Batches: 1200, Compactions: 2},
			},
			"dns": dns.Status{Running: true, Addr: "192.168.1.3:53", Domain: "home.arpa", Leases: 12,
				ByStage: map[string]uint64{"forward": 800, "local": 1200, "cache": 3400, "dropped": 1},
				ByRcode: map[string]uint64{"NXDOMAIN": 300, "NOERROR": 5100, "SERVFAIL": 2, "OTHER": 1},
				Cache:   dns.CacheStatus{Size: 1234, Capacity: 10000, Hits: 3400, Misses: 800, Merged: 10},
				Forward: dns.ForwardStatus{Retransmits: 12, Hedges: 3, ClientRetries: 1, Scrubbed: 4},
				Upstreams: []dns.UpstreamStatus{
					{Addr: "192.168.1.254:53", Healthy: true, Queries: 800, Failures: 2, RTTMilli: 1.25, RTOMilli: 250},
					{Addr: "192.168.1.253:53", Healthy: true, Lossy: true, Queries: 40, Failures: 1, RTTMilli: 30, RTOMilli: 400, PlainDNS: true},
					{Addr: "10.8.0.53:53", Domain: "corp.example", Queries: 3, Failures: 3, RTOMilli: 1000},
				},
			},
			"ra": map[string]any{"running": false},
		},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	// The repairs, whose type the daemon does not export.
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["repairs"] = map[string]any{
		"aliases":  map[string]any{"restores": 3, "last_restore": applied.Add(-2 * time.Minute)},
		"firewall": map[string]any{"restores": 12, "last_restore": applied.Add(-30 * time.Second), "failing": "the table was deleted 6 times within a minute: not putting it back"},
		"router":   map[string]any{"restores": 0},
	}
	b, _ = json.Marshal(m)
	return b
}

// TestStatusText pins the text rendering: counters in a fixed order, name
// first, in human units.
func TestStatusText(t *testing.T) {
	v, err := decodeStatus(sampleStatus(t))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeStatus(&out, v, v.Applied.Add(5*time.Minute))
	const golden = "testdata/status.golden"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("status text differs from %s (go test -update rewrites it):\n%s", golden, out.String())
	}
}

// TestStatusJSONIsTheDaemons: --json prints the daemon's numbers unchanged,
// a counter past 2^53 too (compared as text, not as float64).
func TestStatusJSONIsTheDaemons(t *testing.T) {
	raw := sampleStatus(t)
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	st["big"] = uint64(1<<64 - 1)
	raw, _ = json.Marshal(st)
	f := newFakeDaemon(t, unknownOps(map[string]daemon.Response{"status": {OK: true, Data: raw}}))
	var out, errOut bytes.Buffer
	if code := run([]string{"status", "--json", "--config", f.conf}, &out, &errOut); code != 0 {
		t.Fatalf("gatewayd status --json: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"big": 18446744073709551615,`) {
		t.Errorf("status --json lost the digits of a large counter:\n%s", out.String())
	}
	if a, b := numbers(t, raw), numbers(t, out.Bytes()); a != b {
		t.Errorf("status --json changed the daemon's JSON:\n%s", out.String())
	}
}

// numbers is raw decoded with its numbers as text, and encoded again.
func numbers(t *testing.T, raw []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{num(0), "0"}, {num(999), "999"}, {num(1000), "1.0 k"}, {num(3400), "3.4 k"}, {num(45_600), "45.6 k"},
		{num(999_400), "999 k"}, {num(999_949), "1.0 M"}, {num(1_234_567), "1.2 M"},
		{size(512), "512 B"}, {size(1023), "1023 B"}, {size(1024), "1.0 KiB"}, {size(1258291), "1.2 MiB"}, {size(5 << 30), "5.0 GiB"},
		{human(45 * time.Second), "45s"}, {human(192 * time.Second), "3m12s"}, {human(4*time.Hour + 5*time.Minute), "4h05m"},
		{human(76 * time.Hour), "3d04h"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
