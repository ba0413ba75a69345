package dns

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// dnsperfResult is what dnsperf reports.
type dnsperfResult struct {
	sent, completed, lost int
	qps                   float64
	avgLatency            time.Duration
	clientCPU             time.Duration // dnsperf's own user + system time (benchmarks)
}

var (
	perfSent      = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	perfCompleted = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	perfLost      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	perfQPS       = regexp.MustCompile(`Queries per second:\s+([\d.]+)`)
	perfLatency   = regexp.MustCompile(`Average Latency \(s\):\s+([\d.]+)`)
)

// parseDnsperf reads dnsperf's statistics.
func parseDnsperf(out string) (dnsperfResult, error) {
	var r dnsperfResult
	for _, f := range []struct {
		re  *regexp.Regexp
		dst *int
	}{{perfSent, &r.sent}, {perfCompleted, &r.completed}, {perfLost, &r.lost}} {
		m := f.re.FindStringSubmatch(out)
		if m == nil {
			return r, fmt.Errorf("dnsperf output has no %q line:\n%s", f.re, out)
		}
		*f.dst, _ = strconv.Atoi(m[1])
	}
	if m := perfQPS.FindStringSubmatch(out); m != nil {
		r.qps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := perfLatency.FindStringSubmatch(out); m != nil {
		s, _ := strconv.ParseFloat(m[1], 64)
		r.avgLatency = time.Duration(s * float64(time.Second))
	}
	return r, nil
}

func TestParseDnsperf(t *testing.T) {
	out := `Statistics:

  Queries sent:         10000
  Queries completed:    9998 (99.98%)
  Queries lost:         2 (0.02%)

  Response codes:       NOERROR 9998 (100.00%)
  Average packet size:  request 31, response 47
  Run time (s):         5.000183
  Queries per second:   1999.592

  Average Latency (s):  0.000123 (min 0.000040, max 0.002020)
  Latency StdDev (s):   0.000052
`
	r, err := parseDnsperf(out)
	must(t, err)
	if r.sent != 10000 || r.completed != 9998 || r.lost != 2 || r.qps != 1999.592 || r.avgLatency != 123*time.Microsecond {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseDnsperf("dnsperf: no such file"); err == nil {
		t.Fatal("garbage parsed")
	}
}

// writeQueries writes a dnsperf data file.
func writeQueries(t testing.TB, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queries.txt")
	must(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return path
}

// TestLabDnsperfReload keeps dnsperf sending while Set is called 20 times
// with an unchanged config, then 20 times with a changed record: no query
// may be lost.
func TestLabDnsperfReload(t *testing.T) {
	lab.RequireTools(t, "dig", "dnsperf")
	s := newLabSite(t)
	s.gw.MustRun(t, "ip", "addr", "add", dnsAlias+"/24", "dev", "eth1")
	s.set(t, s.config())
	data := writeQueries(t, []string{"nas.home.arpa A", "router.home.arpa A", "www.example.com A", "printer A", "20.1.168.192.in-addr.arpa PTR"})
	for i, edit := range []func(i int, c *Config){
		func(int, *Config) {}, // unchanged
		func(i int, c *Config) { c.Names[0].Addr = netipAddr4(192, 168, 1, byte(20+i%2)) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		done := make(chan struct{})
		var out string
		var runErr error
		go func() {
			defer close(done)
			out, runErr = s.lan.Run(ctx, "dnsperf", "-s", dnsAlias, "-d", data, "-l", "4", "-Q", "3000", "-t", "2")
		}()
		time.Sleep(500 * time.Millisecond)
		for n := range 20 {
			c := s.config()
			edit(n, c)
			s.set(t, c)
			time.Sleep(100 * time.Millisecond)
		}
		<-done
		cancel()
		must(t, runErr)
		r, err := parseDnsperf(out)
		must(t, err)
		t.Logf("phase %d: sent %d, completed %d, lost %d, %.0f qps", i, r.sent, r.completed, r.lost, r.qps)
		if r.lost != 0 || r.sent < 1000 {
			t.Fatalf("phase %d: %d of %d queries lost across 20 reloads:\n%s", i, r.lost, r.sent, out)
		}
	}
}
