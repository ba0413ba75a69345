package web

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// scrape fetches /metrics from srv and returns the text exposition.
func scrape(t *testing.T, srv *Server) string {
	t.Helper()
	req := request(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

// gather collects the registry and returns its families by name.
func gather(t *testing.T, src Source) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := registry(src).Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// value is the sample of family name whose labels include every pair of
// labels ("k", "v", ...); it fails the test when there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
	}
	for _, m := range f.GetMetric() {
		if hasLabels(m, labels) {
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("%s has no sample with labels %v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestMetricsValues(t *testing.T) {
	src := newFake()
	fams := gather(t, src)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gatewayd_build_info", nil, 1},
		{"gatewayd_config_generation", nil, 3},
		{"gatewayd_config_applied_timestamp_seconds", nil, float64(testNow.Unix() - 600)},
		{"gatewayd_degraded", nil, 0},
		{"gatewayd_reloads_total", nil, 2},
		{"gatewayd_reloads_failed_total", nil, 1},
		{"gatewayd_reload_last_success_timestamp_seconds", nil, float64(testNow.Unix() - 600)},
		{"gatewayd_restores_total", []string{"object", "addresses"}, 1},
		{"gatewayd_alias_info", []string{"alias", "lab", "address", "10.0.0.1/24", "host", "gw2"}, 1},
		{"gatewayd_alias_held", []string{"alias", "lab"}, 0},
		{"gatewayd_alias_present", []string{"alias", "dns"}, 1},
		{"gatewayd_alias_packets_total", []string{"alias", "dns", "direction", "in"}, 1234},
		{"gatewayd_alias_bytes_total", []string{"alias", "dns", "direction", "out"}, 154321},
		{"gatewayd_zone_packets_total", []string{"zone", "lan", "path", "forward"}, 77},
		{"gatewayd_zone_bytes_total", []string{"zone", "lan", "path", "input"}, 100000},
		{"gatewayd_zone_packets_total", []string{"zone", "upstream", "path", "drop"}, 42},
		{"gatewayd_zone_bytes_total", []string{"zone", "upstream", "path", "return"}, 91000},
		{"gatewayd_zone_packets_total", []string{"zone", "closed", "path", "drop"}, 11},
		{"gatewayd_zone_bytes_total", []string{"zone", "closed", "path", "input"}, 480},
		{"gatewayd_zone_packets_total", []string{"zone", "link", "path", "input"}, 25},
		{"gatewayd_zone_bytes_total", []string{"zone", "link", "path", "input"}, 1800},
		{"gatewayd_role_held", []string{"role", "dhcp"}, 1},
		{"gatewayd_role_healthy", []string{"role", "firewall"}, 1},
		{"gatewayd_router_forwarding", nil, 1},
		{"gatewayd_router_owned_routes", nil, 1},
		{"gatewayd_dhcp_received_total", []string{"type", "discover"}, 5},
		{"gatewayd_dhcp_sent_total", []string{"type", "ack"}, 3},
		{"gatewayd_dhcp_received_total", []string{"type", "other"}, 3},
		{"gatewayd_dhcp_outcomes_total", []string{"outcome", "nak"}, 1},
		{"gatewayd_dhcp_outcomes_total", []string{"outcome", "ignored"}, 2},
		{"gatewayd_dhcp_leases", []string{"state", "active"}, 2},
		{"gatewayd_dhcp_pool_addresses", []string{"pool", "192.168.1.100-192.168.1.199"}, 100},
		{"gatewayd_dhcp_pool_used_addresses", []string{"subnet", "192.168.1.0/24"}, 3},
		{"gatewayd_dhcp_pool_active_leases", nil, 2},
		{"gatewayd_dhcp_lease_store_commits_total", nil, 4},
		{"gatewayd_dhcp_lease_store_batches_total", nil, 3},
		{"gatewayd_dhcp_lease_store_bytes", nil, 512},
		{"gatewayd_dns_queries_total", []string{"stage", "local"}, 700},
		{"gatewayd_dns_responses_total", []string{"rcode", "NXDOMAIN"}, 100},
		{"gatewayd_dns_problems_total", []string{"kind", "malformed"}, 2},
		{"gatewayd_dns_problems_total", []string{"kind", "unsent"}, 3},
		{"gatewayd_dns_forward_events_total", []string{"event", "retransmit"}, 7},
		{"gatewayd_dns_forward_events_total", []string{"event", "unwanted_reply"}, 2},
		{"gatewayd_dns_cache_entries", nil, 120},
		{"gatewayd_dns_cache_capacity_entries", nil, 10000},
		{"gatewayd_dns_cache_hits_total", nil, 300},
		{"gatewayd_dns_cache_misses_total", nil, 210},
		{"gatewayd_dns_cache_evictions_total", nil, 5},
		{"gatewayd_dns_upstream_queries_total", []string{"upstream", "192.168.1.254:53", "domain", ""}, 210},
		{"gatewayd_dns_upstream_failures_total", []string{"domain", "corp.example"}, 9},
		{"gatewayd_dns_upstream_rtt_seconds", []string{"upstream", "192.168.1.254:53"}, 0.0125},
		{"gatewayd_dns_upstream_healthy", []string{"domain", "corp.example"}, 0},
		{"gatewayd_dns_query_duration_seconds", []string{"stage", "forward"}, 200}, // a histogram's count
		{"gatewayd_dhcp_lease_store_fsync_duration_seconds", nil, 3},
		{"gatewayd_dhcp_lease_store_batch_records", nil, 3},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Not counted yet by the firewall: left out, not reported as zero.
	if got := value(t, fams, "gatewayd_restores_total"); got != 1 || len(fams["gatewayd_restores_total"].GetMetric()) != 1 {
		t.Errorf("restores_total: want only the addresses series, got %v", fams["gatewayd_restores_total"].GetMetric())
	}
}

// TestMetricsZonePaths: every zone, and the pseudo-zone "closed", has the
// four paths of the firewall's accounting; "link" has input only; without a
// firewall table (before the first apply) there is no zone series at all,
// rather than zeros; and the help says what "return" counts (the zone's
// replies to flows opened elsewhere, firewall/origins.go).
func TestMetricsZonePaths(t *testing.T) {
	for _, name := range []string{"gatewayd_zone_packets_total", "gatewayd_zone_bytes_total"} {
		paths := map[string][]string{}
		for _, m := range gather(t, newFake())[name].GetMetric() {
			var zone, path string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "zone":
					zone = l.GetValue()
				case "path":
					path = l.GetValue()
				}
			}
			paths[zone] = append(paths[zone], path)
		}
		all := "[drop forward input return]"
		for zone, want := range map[string]string{"lan": all, "lab": all, "upstream": all, "closed": all, "link": "[input]"} {
			got := paths[zone]
			slices.Sort(got)
			if fmt.Sprint(got) != want {
				t.Errorf("%s{zone=%q}: paths %v, want %s", name, zone, got, want)
			}
		}
		if len(paths) != 5 {
			t.Errorf("%s: zones %v, want lan, lab, upstream, closed, link", name, paths)
		}
		if f := gather(t, &fakeSource{})[name]; f != nil {
			t.Errorf("%s before the first apply: %v, want no series", name, f.GetMetric())
		}
	}
	text := scrape(t, newTestServer(newFake()))
	if !strings.Contains(text, "return (routed, the zone's replies to flows opened elsewhere)") {
		t.Errorf("the zone help does not say what return counts:\n%s", text)
	}
}

// Counters are read at scrape time: a change in the source shows in the
// next scrape, and each scrape reads the source once.
func TestMetricsReadAtScrape(t *testing.T) {
	src := newFake()
	srv := newTestServer(src)
	before := src.reads
	first := scrape(t, srv)
	if src.reads != before+1 {
		t.Errorf("a scrape read the source %d times, want 1", src.reads-before)
	}
	src.set(func(st *Status) { st.DNS.ByStage["cache"] = 301; st.Degraded = "a reload failed" })
	second := scrape(t, srv)
	for _, line := range []string{`gatewayd_dns_queries_total{stage="cache"} 300`, "gatewayd_degraded 0"} {
		if !strings.Contains(first, line+"\n") {
			t.Errorf("first scrape lacks %q", line)
		}
	}
	for _, line := range []string{`gatewayd_dns_queries_total{stage="cache"} 301`, "gatewayd_degraded 1"} {
		if !strings.Contains(second, line+"\n") {
			t.Errorf("second scrape lacks %q", line)
		}
	}
}

// A role's histogram plugs in through Status.Histograms alone.
func TestMetricsHistograms(t *testing.T) {
	src := newFake()
	src.set(func(st *Status) {
		st.Histograms = Histograms{
			DNSQuery:   map[string]*Histogram{"local": {Count: 700, Sum: 0.35, Buckets: map[float64]uint64{0.0005: 600, 0.001: 690, 0.01: 700}}},
			LeaseFsync: &Histogram{Count: 3, Sum: 0.006, Buckets: map[float64]uint64{0.001: 1, 0.01: 3}},
			LeaseBatch: &Histogram{Count: 3, Sum: 5, Buckets: map[float64]uint64{1: 1, 2: 2, 4: 3}},
		}
	})
	fams := gather(t, src)
	if got := value(t, fams, "gatewayd_dns_query_duration_seconds", "stage", "local"); got != 700 {
		t.Errorf("dns_query_duration_seconds count = %v, want 700", got)
	}
	h := fams["gatewayd_dhcp_lease_store_fsync_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleSum() != 0.006 || len(h.GetBucket()) != 2 || h.GetBucket()[1].GetCumulativeCount() != 3 {
		t.Errorf("fsync histogram = %v", h)
	}
	text := scrape(t, newTestServer(src))
	for _, want := range []string{
		`gatewayd_dns_query_duration_seconds_bucket{stage="local",le="0.001"} 690`,
		`gatewayd_dns_query_duration_seconds_bucket{stage="local",le="+Inf"} 700`,
		"# TYPE gatewayd_dhcp_lease_store_fsync_duration_seconds histogram",
		`gatewayd_dhcp_lease_store_batch_records_bucket{le="2"} 2`,
		"gatewayd_dhcp_lease_store_batch_records_sum 5",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	promtool(t, text)
}

// Cardinality is bounded: no label carries a client's address, MAC or
// hostname, or a queried name, whatever the roles hold.
func TestMetricsNoClientLabels(t *testing.T) {
	src := newFake()
	client := map[string]bool{}
	for _, l := range src.leases {
		client[l.Address.String()], client[l.MAC], client[l.Hostname] = true, true, true
	}
	for name, f := range gather(t, src) {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if client[l.GetValue()] && l.GetValue() != "" {
					t.Errorf("%s has a label %s=%q of a client", name, l.GetName(), l.GetValue())
				}
				if slices.Contains([]string{"client", "mac", "hostname", "name", "qname"}, l.GetName()) {
					t.Errorf("%s has a per-client label %s", name, l.GetName())
				}
			}
		}
	}
}

// promtool lints the exposition when it is installed (make deps installs it;
// CI fails without it).
func promtool(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed (make deps installs package prometheus); CI must lint the metrics")
		}
		t.Log("promtool not installed: the metrics are not linted")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestMetricsPromtool(t *testing.T) {
	promtool(t, scrape(t, newTestServer(newFake()))) // the histograms included
	// The empty daemon (before the first apply, no role) lints too.
	promtool(t, scrape(t, newTestServer(&fakeSource{})))
}

func TestMetricsOnlyGet(t *testing.T) {
	srv := newTestServer(newFake())
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, request(m, "/metrics", strings.NewReader("x")))
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /metrics: %d, Allow %q", m, w.Code, w.Header().Get("Allow"))
		}
	}
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, request(http.MethodHead, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Errorf("HEAD /metrics: %d", w.Code)
	}
	_, _ = io.Copy(io.Discard, w.Body)
}

// TestMetricsDescribed: every family the collector emits is one it
// describes; a pedantic registry refuses any other.
func TestMetricsDescribed(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(newCollector(newFake())); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("a family emitted but not described: %v", err)
	}
}
