package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestWebAgainstTraffic: a real daemon with the status page and metrics on
// the router alias; a client in the zone that allows "web" gets a lease,
// asks DNS and scrapes /metrics, and the figures are what it did; the page
// loads in headless Chromium from that client; a client in a zone that does
// not allow "web" gets nothing back (dropped, not refused).
func TestWebAgainstTraffic(t *testing.T) {
	lab.RequireTools(t, "chromium", "promtool")
	s := newTwoBoxes(t)
	site := fmt.Sprintf(siteFile, "gw1", s.gw1.dir, "gw1", "gw1")
	site = strings.Replace(site, "[[alias]]\nname = \"router\"", "[[alias]]\nname = \"guest\"\naddress = \"198.18.7.1/24\"\n\n[[alias]]\nname = \"router\"", 1)
	site = strings.Replace(site, "announce_count = 2\n", "announce_count = 2\nmetrics = \"192.0.2.1:9253\"\n", 1)
	site = strings.Replace(site, `allow = ["dhcp", "dns", "ping"]`, `allow = ["dhcp", "dns", "ping", "web"]`, 1)
	site += "\n[zone.guest]\nsubnets = [\"198.18.7.0/24\"]\nallow = [\"ping\"]\n"
	s.gw1.write(site)
	s.gw1.start()

	udhcpc, err := s.client.Start(context.Background(), "udhcpc", "-f", "-i", "eth0", "-s", s.script, "-t", "5", "-T", "1")
	if err != nil {
		t.Fatal(err)
	}
	defer udhcpc.Process.Kill()
	var leased string
	lab.Eventually(t, 10*time.Second, func() error {
		if f := strings.Fields(s.lastEvent()); len(f) == 3 && f[0] == "bound" {
			leased = f[1]
			return nil
		}
		return errors.New("no lease yet")
	})
	const local = 3
	for range local {
		if out, err := s.dig("nas.home.arpa"); err != nil || out != "192.0.2.20" {
			t.Fatalf("dig nas.home.arpa: %q %v", out, err)
		}
	}

	text := httpGet(t, s.client, "http://192.0.2.1:9253/metrics", 5*time.Second)
	for _, want := range []struct {
		metric  string
		atLeast float64
	}{
		{`gatewayd_dhcp_leases{state="active"}`, 1},
		{`gatewayd_dns_queries_total{stage="local"}`, local},
		{`gatewayd_alias_packets_total{alias="dns",direction="in"}`, local},
		{`gatewayd_config_generation`, 1},
	} {
		if got := metricValue(text, want.metric); got < want.atLeast {
			t.Errorf("%s = %v, want at least %v", want.metric, got, want.atLeast)
		}
	}
	// The roles' histograms: the DNS loops time a batch's replies just
	// after sending them, so the client may have the last one first.
	lab.Eventually(t, 5*time.Second, func() error {
		for _, want := range []struct {
			metric  string
			atLeast float64
		}{
			{`gatewayd_dns_query_duration_seconds_count{stage="local"}`, local},
			{`gatewayd_dns_query_duration_seconds_bucket{stage="local",le="+Inf"}`, local},
			{`gatewayd_dhcp_lease_store_fsync_duration_seconds_count`, 1},
			{`gatewayd_dhcp_lease_store_batch_records_sum`, 1},
		} {
			if got := metricValue(text, want.metric); got < want.atLeast {
				text = httpGet(t, s.client, "http://192.0.2.1:9253/metrics", 5*time.Second)
				return fmt.Errorf("%s = %v, want at least %v", want.metric, got, want.atLeast)
			}
		}
		return nil
	})
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// The page, in a real browser on the client.
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	browser := s.client.Command(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--disable-dev-shm-usage", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--dump-dom", "http://192.0.2.1:9253/")
	browser.Env = append(os.Environ(), "HOME="+dir)
	var dom, errOut bytes.Buffer
	browser.Stdout, browser.Stderr = &dom, &errOut
	if err := s.client.StartCommand(browser); err != nil {
		t.Fatal(err)
	}
	if err := browser.Wait(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"192.0.2.1/24", "192.0.2.3/24", leased} {
		if !strings.Contains(dom.String(), want) {
			t.Errorf("the page in Chromium lacks %q", want)
		}
	}

	// A client in the guest zone, which does not allow "web": its SYN is
	// dropped, so the connection times out instead of being refused.
	guest, err := s.gw1.lab.Namespace("guest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.gw1.lab.Plug(s.gw1.sw, guest, "eth0"); err != nil {
		t.Fatal(err)
	}
	guest.MustRun(t, "ip", "addr", "add", "198.18.7.50/24", "dev", "eth0")
	guest.MustRun(t, "ip", "route", "add", "192.0.2.0/24", "via", "198.18.7.1")
	// The path is there (ping is allowed to every alias): only web is not.
	if err := guest.Ping(t.Context(), netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatalf("the guest zone allows ping: %v", err)
	}
	_, err = newNSClient(guest, 2*time.Second).Get("http://192.0.2.1:9253/metrics")
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("from the guest zone: %v, want a timeout (the firewall drops it)", err)
	}
}

// newNSClient is an HTTP client whose connections start inside ns.
func newNSClient(ns *lab.Namespace, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return ns.DialContext(ctx, &net.Dialer{}, network, addr)
	}}}
}

// httpGet fetches url from inside ns.
func httpGet(t *testing.T, ns *lab.Namespace, url string, timeout time.Duration) string {
	t.Helper()
	resp, err := newNSClient(ns, timeout).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// metricValue is the value of one series in Prometheus text, or -1.
func metricValue(text, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
