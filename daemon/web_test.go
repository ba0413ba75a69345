package daemon

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatewayd/config"
	"gatewayd/lab"
	"gatewayd/web"
)

// webDaemon is a controller on fake subsystems that applied the states
// site with the lab alias, then had one reload refused and one, without the
// lab alias, succeed.
func webDaemon(t *testing.T, metrics string) *Daemon {
	t.Helper()
	d := New(Options{Subsystems: newFakeOS().subsystems(), Metrics: metrics})
	if _, err := d.Apply(context.Background(), statesConfig(t, "", true, false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Reload("gateway.toml", []byte("[gateway]\nnonsense = 1\n"), 0); err == nil {
		t.Fatal("a bad config was not refused")
	}
	if _, _, err := d.Reload("gateway.toml", []byte(statesText("", false, false)), 0); err != nil {
		t.Fatal(err)
	}
	return d
}

// The adapter hands the web package every part in its own type, the zone
// policy of the running config and the reload history.
func TestWebSource(t *testing.T) {
	d := webDaemon(t, "")
	src := webSource{d}
	st := src.Status()
	if st.Host != "gw1" || st.Generation != 2 || len(st.Aliases) != 2 || st.Aliases[0].Name != "router" || !st.Aliases[0].Present {
		t.Errorf("status: host %q generation %d aliases %+v", st.Host, st.Generation, st.Aliases)
	}
	if st.Router == nil || st.DNS == nil || st.DHCP == nil || st.FirewallErr != "" {
		t.Errorf("parts missing: router %v dns %v dhcp %v firewall error %q", st.Router, st.DNS, st.DHCP, st.FirewallErr)
	}
	if len(st.Zones) != 1 || st.Zones[0].Name != "lan" || len(st.Zones[0].Allow) != 2 ||
		st.Zones[0].Allow[0] != (web.Service{Name: "dns", Ports: "udp/53 tcp/53"}) || st.Zones[0].Allow[1] != (web.Service{Name: "ssh", Ports: "tcp/22"}) {
		t.Errorf("zones: %+v", st.Zones)
	}
	r := st.Reloads
	if r.Total != 2 || r.Failed != 1 || len(r.Recent) != 2 || !r.Recent[0].OK || r.Recent[0].Changes == 0 ||
		r.Recent[1].OK || !strings.Contains(r.Recent[1].Error, "nonsense") || r.LastSuccess != r.Recent[0].At {
		t.Errorf("reloads: %+v", r)
	}
	// /status.json is the control socket's answer, byte for byte before indenting.
	raw, err := src.StatusJSON()
	if err != nil {
		t.Fatal(err)
	}
	if resp := d.handle(Request{Op: "status"}); string(resp.Data) != string(raw) {
		t.Errorf("StatusJSON differs from the control socket's status:\n%s\n%s", raw, resp.Data)
	}
	w := httptest.NewRecorder()
	web.New(src, web.Options{}).Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9253/metrics", nil))
	for _, line := range []string{"gatewayd_config_generation 2", "gatewayd_reloads_total 2", "gatewayd_reloads_failed_total 1",
		`gatewayd_role_healthy{role="firewall"} 1`, `gatewayd_alias_present{alias="dns"} 1`} {
		if !strings.Contains(w.Body.String(), line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// A role's distribution, a count per bucket, reaches the web package
// cumulative by upper bound; one without its buckets is left out.
func TestWebHistogram(t *testing.T) {
	h := webHistogram([]float64{0.001, 0.01, 0.1}, []uint64{2, 0, 3, 1}, 6, 0.25)
	want := map[float64]uint64{0.001: 2, 0.01: 2, 0.1: 5}
	if h == nil || h.Count != 6 || h.Sum != 0.25 || !maps.Equal(h.Buckets, want) {
		t.Errorf("webHistogram = %+v, want buckets %v", h, want)
	}
	if h := webHistogram(nil, nil, 0, 0); h != nil {
		t.Errorf("no buckets: %+v", h)
	}
}

// The web listener answers to the box's host name and its FQDN.
func TestWebNames(t *testing.T) {
	for _, tt := range []struct {
		host, domain string
		want         string
	}{
		{"gw1", "home.arpa", "[gw1 gw1.home.arpa]"},
		{"gw1", "home.arpa.", "[gw1 gw1.home.arpa]"},
		{"gw1", "", "[gw1]"},
		{"gw1.example.org.", "home.arpa", "[gw1.example.org gw1]"},
	} {
		c := &config.Config{Gateway: config.Gateway{Host: tt.host}}
		if tt.domain != "" {
			c.DNS = &config.DNS{Domain: tt.domain}
		}
		if got := fmt.Sprint(webNames(c)); got != tt.want {
			t.Errorf("webNames(host %q, domain %q) = %s, want %s", tt.host, tt.domain, got, tt.want)
		}
	}
}

func TestReloadLogKeepsTheLast(t *testing.T) {
	var r reloadLog
	for i := range keepReloads + 5 {
		r.note(make([]string, i), nil)
	}
	got := r.read()
	if got.Total != keepReloads+5 || len(got.Recent) != keepReloads || got.Recent[0].Changes != keepReloads+4 {
		t.Errorf("reloads: total %d, %d kept, newest with %d changes", got.Total, len(got.Recent), got.Recent[0].Changes)
	}
}

// The listener binds only the configured address, answers GET, stops with
// the daemon, binds an address not on the NIC yet, and a taken port is an
// error naming the key.
func TestWebListener(t *testing.T) {
	lab.Require(t)
	ns, err := lab.New(t).Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	d := webDaemon(t, "127.0.0.1:9253")
	if err := ns.Do(d.startWeb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stopWeb)
	if d.web.bound != "127.0.0.1:9253" {
		t.Errorf("bound %s, want 127.0.0.1:9253 only", d.web.bound)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.DialContext(ctx, &net.Dialer{}, network, addr)
		},
	}}
	get := func(method, path string) (int, string, error) {
		req, _ := http.NewRequest(method, "http://127.0.0.1:9253"+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	if code, body, err := get(http.MethodGet, "/metrics"); err != nil || code != 200 || !strings.Contains(body, "gatewayd_config_generation 2\n") {
		t.Errorf("GET /metrics: %d %v\n%.300s", code, err, body)
	}
	want, _ := web.IndentJSON(d.handle(Request{Op: "status"}).Data)
	if code, body, err := get(http.MethodGet, "/status.json"); err != nil || code != 200 || body != string(want) {
		t.Errorf("GET /status.json: %d %v\n%s\nwant\n%s", code, err, body, want)
	}
	if code, _, err := get(http.MethodGet, "/"); err != nil || code != 200 {
		t.Errorf("GET /: %d %v", code, err)
	}
	if code, _, err := get(http.MethodPost, "/"); err != nil || code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d %v", code, err)
	}
	// A name the box does not have is refused (DNS rebinding).
	rebound, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9253/status.json", nil)
	rebound.Host = "evil.example:9253"
	if resp, err := client.Do(rebound); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("GET /status.json for Host evil.example: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	taken := webDaemon(t, "127.0.0.1:9253")
	if err := ns.Do(taken.startWeb); err == nil || !strings.Contains(err.Error(), "[gateway] metrics") {
		taken.stopWeb()
		t.Errorf("a second listener on the same port: %v", err)
	}
	absent := webDaemon(t, "198.51.100.9:9253")
	if err := ns.Do(absent.startWeb); err != nil {
		t.Errorf("binding an address not on the NIC yet: %v", err)
	}
	absent.stopWeb()

	d.stopWeb()
	if _, _, err := get(http.MethodGet, "/metrics"); err == nil {
		t.Error("the listener still answers after stopWeb")
	}
	d.stopWeb() // a second stop does nothing
}
