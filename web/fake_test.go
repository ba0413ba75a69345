package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"time"

	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
)

// fakeSource hands out a fixed status the tests can change between reads.
type fakeSource struct {
	mu     sync.Mutex
	st     Status
	leases []dhcp.Lease
	reads  int
}

func (f *fakeSource) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.st
}

func (f *fakeSource) StatusJSON() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return json.Marshal(map[string]any{"host": f.st.Host, "generation": f.st.Generation, "roles": map[string]any{"dns": f.st.DNS}})
}

func (f *fakeSource) Leases() []dhcp.Lease {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leases
}

func (f *fakeSource) set(fn func(st *Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

// testNow is the fake clock of every test.
var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// hostile is a name a DHCP client or a config may carry.
const hostile = `<script>alert("x")</script>`

// newFake is the seed site: three aliases here and one on another box,
// every role held, some traffic counted.
func newFake() *fakeSource {
	st := Status{
		Host: "gw1", Interface: "eth1", Config: "/etc/gatewayd/gateway.toml",
		Generation: 3, Applied: testNow.Add(-10 * time.Minute),
		Aliases: []Alias{
			{Name: "router", Address: "192.168.1.1/24", Label: "eth1:0", Held: true, Present: true},
			{Name: "dhcp", Address: "192.168.1.2/24", Label: "eth1:1", Held: true, Present: true},
			{Name: "dns", Address: "192.168.1.3/24", Label: "eth1:2", Held: true, Present: true},
			{Name: "lab", Address: "10.0.0.1/24", Label: "eth1:3", Host: "gw2"},
		},
		Zones: []Zone{
			{Name: "lan", Subnets: []string{"192.168.1.0/24"}, Forward: []string{"upstream", "lab"},
				Allow: []Service{{"dhcp", "udp/67"}, {"dns", "udp/53 tcp/53"}, {"ssh", "tcp/22"}}},
			{Name: "lab", Subnets: []string{"10.0.0.0/24"}, Forward: []string{"upstream"}, Allow: []Service{{"dns", "udp/53 tcp/53"}}},
		},
		Firewall: firewall.Counters{
			Aliases: []firewall.AliasCounters{
				{Alias: "router", In: firewall.Count{Packets: 10, Bytes: 840}, Out: firewall.Count{Packets: 9, Bytes: 756}},
				{Alias: "dhcp", In: firewall.Count{Packets: 4, Bytes: 1312}, Out: firewall.Count{Packets: 2, Bytes: 656}},
				{Alias: "dns", In: firewall.Count{Packets: 1234, Bytes: 98765}, Out: firewall.Count{Packets: 1230, Bytes: 154321}},
			},
			Zones: []firewall.ZoneCounters{
				{Zone: "lan", In: firewall.Count{Packets: 1250, Bytes: 100000}, Forward: firewall.Count{Packets: 77, Bytes: 6468}, Drop: firewall.Count{Packets: 3, Bytes: 180}},
				{Zone: "lab", In: firewall.Count{Packets: 5, Bytes: 300}},
				{Zone: firewall.UpstreamZone, Return: firewall.Count{Packets: 70, Bytes: 91000}, Drop: firewall.Count{Packets: 42, Bytes: 2520}},
			},
			Closed: firewall.ZoneCounters{In: firewall.Count{Packets: 6, Bytes: 480}, Drop: firewall.Count{Packets: 11, Bytes: 880}},
			Link:   firewall.Count{Packets: 25, Bytes: 1800},
		},
		Router: &router.Status{Held: true, Interface: "eth1", Upstream: "192.168.1.254", Forwarding: true, Routes: []string{"default via 192.168.1.254"}},
		DNS: &dns.Status{
			Running: true, Addr: "192.168.1.3:53", Domain: "home.arpa",
			ByStage:   map[string]uint64{"local": 700, "cache": 300, "forward": 200, "access": 4},
			ByRcode:   map[string]uint64{"NOERROR": 1100, "NXDOMAIN": 100, "REFUSED": 4},
			Malformed: 2, Truncated: 1, Unsent: 3, Leases: 1,
			Forward: dns.ForwardStatus{Retransmits: 7, Unwanted: 2},
			Cache:   dns.CacheStatus{Size: 120, Capacity: 10000, Hits: 300, Misses: 210, Evictions: 5, Stale: 1, Merged: 10},
			Upstreams: []dns.UpstreamStatus{
				{Addr: "192.168.1.254:53", Healthy: true, Queries: 210, Failures: 3, RTTMilli: 12.5},
				{Addr: "192.0.2.53:53", Domain: "corp.example", Healthy: false, Queries: 9, Failures: 9, RTTMilli: 0},
			},
		},
		DHCP: &dhcp.Status{
			Running: true, Interface: "eth1", Address: netip.MustParseAddr("192.168.1.2"),
			Pools:  []dhcp.PoolStatus{{Range: "192.168.1.100-192.168.1.199", Subnet: "192.168.1.0/24", Size: 100, Used: 3, Active: 2}},
			Active: 2, Declined: 1, Offers: 1,
			Counters: dhcp.Counters{
				In:   map[string]uint64{"discover": 5, "request": 4, "decline": 1, "unknown (200)": 2, "unknown (201)": 1},
				Out:  map[string]uint64{"offer": 5, "ack": 3, "nak": 1},
				Naks: 1, Declines: 1, Ignored: 2,
			},
			Store: dhcp.StoreStatus{Path: "/var/lib/gatewayd/leases.log", Records: 4, Bytes: 512, Commits: 4, Batches: 3},
		},
		Reloads: Reloads{Total: 2, Failed: 1, LastSuccess: testNow.Add(-10 * time.Minute), Recent: []Reload{
			{At: testNow.Add(-10 * time.Minute), OK: true, Changes: 3},
			{At: testNow.Add(-20 * time.Minute), Error: "config refused: gateway.toml:12:3: " + hostile},
		}},
		Restores: Restores{"addresses": 1},
		Histograms: Histograms{
			DNSQuery: map[string]*Histogram{
				"local":   {Count: 700, Sum: 0.02, Buckets: map[float64]uint64{25e-6: 600, 50e-6: 690, 100e-6: 700, 1: 700}},
				"forward": {Count: 200, Sum: 4.5, Buckets: map[float64]uint64{25e-6: 0, 10e-3: 120, 25e-3: 190, 1: 199}},
			},
			LeaseFsync: &Histogram{Count: 3, Sum: 0.003, Buckets: map[float64]uint64{500e-6: 1, 1e-3: 2, 2.5e-3: 3}},
			LeaseBatch: &Histogram{Count: 3, Sum: 4, Buckets: map[float64]uint64{1: 2, 2: 3, 4: 3}},
		},
	}
	leases := []dhcp.Lease{
		{Address: netip.MustParseAddr("192.168.1.101"), MAC: "02:00:00:00:00:01", Hostname: "zebra", Expires: testNow.Add(2 * time.Hour), State: dhcp.StateActive},
		{Address: netip.MustParseAddr("192.168.1.100"), MAC: "02:00:00:00:00:02", Hostname: hostile, Expires: testNow.Add(11 * time.Hour), State: dhcp.StateActive},
		{Address: netip.MustParseAddr("192.168.1.102"), MAC: "02:00:00:00:00:03", Expires: testNow.Add(time.Hour), State: dhcp.StateDeclined},
	}
	return &fakeSource{st: st, leases: leases}
}

func newTestServer(src Source) *Server {
	return New(src, Options{Now: func() time.Time { return testNow }, Names: []string{"gw1"}})
}

// request is a request for path on the box by its name (httptest's own
// default, example.com, is a name the box refuses).
func request(method, path string, body io.Reader) *http.Request {
	return httptest.NewRequest(method, "http://gw1:9253"+path, body)
}
