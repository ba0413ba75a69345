package daemon_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatewayd/lab"
)

// BenchmarkScrapeCost (issue #16): the whole daemon serving DNS and DHCP at
// fixed rates, its CPU per query and per DHCP exchange (user + system of the
// daemon process, from /proc) measured without and with a scraper fetching
// /metrics and the status page once a second, side by side in one run:
// rounds alternating without and with it, medians, and the scrapes' own
// CPU (measured on the idle daemon first) taken out to show the hot paths.
func BenchmarkScrapeCost(b *testing.B) {
	lab.RequireTools(b, "dnsperf", "perfdhcp")
	const dnsRate, dhcpRate, seconds, rounds = 10000, 2000, 8, 3
	for b.Loop() {
		l := lab.New(b)
		sw, err := l.Switch("lan")
		if err != nil {
			b.Fatal(err)
		}
		g := plugGateway(b, l, sw, "gw", "192.0.2.250/24")
		client, err := l.Namespace("client")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Plug(sw, client, "eth0"); err != nil {
			b.Fatal(err)
		}
		client.MustRun(b, "ip", "addr", "add", "192.0.2.60/24", "dev", "eth0")
		site := fmt.Sprintf(siteFile, "gw1", g.dir, "gw1", "gw1")
		site = strings.Replace(site, "announce_count = 2\n", "announce_count = 2\nmetrics = \"192.0.2.1:9253\"\nlog_level = \"warn\"\n", 1)
		site = strings.Replace(site, `allow = ["dhcp", "dns", "ping"]`, `allow = ["dhcp", "dns", "ping", "web"]`, 1)
		g.write(site)
		g.start()
		queries := filepath.Join(g.dir, "queries")
		if err := os.WriteFile(queries, []byte("nas.home.arpa A\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		pid := g.cmd.Process.Pid

		var scrapes atomic.Int64 // fetches of /metrics and the page, in pairs
		scrapePair := func() {
			scrapeOnce(client, "http://192.0.2.1:9253/metrics")
			scrapeOnce(client, "http://192.0.2.1:9253/")
			scrapes.Add(1)
		}
		// What one scrape costs the daemon on its own, idle: the figure to
		// take out of the loaded runs to see the hot paths alone.
		const idlePairs = 50
		before := cpu(pid)
		for range idlePairs {
			scrapePair()
		}
		perScrape := (cpu(pid) - before) / idlePairs
		// measure returns the CPU per query and per exchange, and the same
		// less the CPU of the scrapes made meanwhile (perScrape each).
		measure := func(scrape bool) (dnsUS, dhcpUS, dnsHot, dhcpHot float64, lost string) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if scrape {
				go func() {
					for ctx.Err() == nil {
						scrapePair()
						select {
						case <-ctx.Done():
						case <-time.After(time.Second):
						}
					}
				}()
			}
			s0 := scrapes.Load()
			before := cpu(pid)
			out := client.MustRun(b, "dnsperf", "-s", "192.0.2.3", "-d", queries, "-l", strconv.Itoa(seconds), "-Q", strconv.Itoa(dnsRate), "-t", "2")
			dnsCPU := cpu(pid) - before
			s1 := scrapes.Load()
			sent, lostQ := dnsperfCounts(out)
			before = cpu(pid)
			// 80 clients: the site's pool has 100 addresses; renewals.
			pd, _ := client.Run(ctx, "perfdhcp", "-4", "-r", strconv.Itoa(dhcpRate), "-R", "80", "-p", strconv.Itoa(seconds), "-l", "192.0.2.60", "192.0.2.2")
			dhcpCPU := cpu(pid) - before
			s2 := scrapes.Load()
			acks := perfdhcpAcks(pd)
			if sent == 0 || acks == 0 {
				b.Fatalf("no load: dnsperf %d queries, perfdhcp %d exchanges\n%s\n%s", sent, acks, out, pd)
			}
			per := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }
			return per(dnsCPU, sent), per(dhcpCPU, acks),
				per(dnsCPU-perScrape*time.Duration(s1-s0), sent), per(dhcpCPU-perScrape*time.Duration(s2-s1), acks),
				fmt.Sprintf("%d of %d", lostQ, sent)
		}
		// Rounds alternate without and with the scraper, so a burst of load
		// from elsewhere falls on both alike; each figure is the median.
		var off, on, hot [2][]float64
		var lostOff, lostOn string
		for range rounds {
			d, h, _, _, l := measure(false)
			off[0], off[1], lostOff = append(off[0], d), append(off[1], h), l
			d, h, dh, hh, l := measure(true)
			on[0], on[1], hot[0], hot[1], lostOn = append(on[0], d), append(on[1], h), append(hot[0], dh), append(hot[1], hh), l
		}
		dnsOff, dhcpOff, dnsOn, dhcpOn := median(off[0]), median(off[1]), median(on[0]), median(on[1])
		dnsHot, dhcpHot := median(hot[0]), median(hot[1])
		fmt.Printf("\nscraping once a second, whole daemon (DNS %d qps local names, DHCP %d exchanges/s, %d s each; median of %d rounds):\n", dnsRate, dhcpRate, seconds, rounds)
		fmt.Printf("  one scrape (/metrics and the page), idle daemon: %.2f ms of CPU (%d scrapes)\n", float64(perScrape.Microseconds())/1000, idlePairs)
		fmt.Printf("  %-18s %14s %14s %10s %22s %10s\n", "", "no scraper", "scraper 1/s", "ratio", "less the scrapes' own", "ratio")
		fmt.Printf("  %-18s %11.2f µs %11.2f µs %9.2f× %19.2f µs %9.2f×\n", "DNS CPU/query", dnsOff, dnsOn, dnsOn/dnsOff, dnsHot, dnsHot/dnsOff)
		fmt.Printf("  %-18s %11.1f µs %11.1f µs %9.2f× %19.1f µs %9.2f×\n", "DHCP CPU/exchange", dhcpOff, dhcpOn, dhcpOn/dhcpOff, dhcpHot, dhcpHot/dhcpOff)
		fmt.Printf("  %-18s %14s %14s\n", "DNS lost", lostOff, lostOn)
		b.ReportMetric(float64(perScrape.Microseconds())/1000, "ms/scrape")
		b.ReportMetric(dnsOff, "dns-µs/q")
		b.ReportMetric(dnsOn, "dns-scraped-µs/q")
		b.ReportMetric(dhcpOff, "dhcp-µs/x")
		b.ReportMetric(dhcpOn, "dhcp-scraped-µs/x")
	}
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// cpu is a process's user plus system time, from /proc (10 ms ticks).
func cpu(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(u+st) * 10 * time.Millisecond
}

// scrapeOnce fetches url from inside ns and drops the body.
func scrapeOnce(ns *lab.Namespace, url string) {
	if resp, err := newNSClient(ns, 2*time.Second).Get(url); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

var (
	dnsperfSent = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	dnsperfLost = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	perfdhcpRcv = regexp.MustCompile(`received packets: (\d+)`)
)

func dnsperfCounts(out string) (sent, lost int) {
	if m := dnsperfSent.FindStringSubmatch(out); m != nil {
		sent, _ = strconv.Atoi(m[1])
	}
	if m := dnsperfLost.FindStringSubmatch(out); m != nil {
		lost, _ = strconv.Atoi(m[1])
	}
	return sent, lost
}

// perfdhcpAcks is the number of ACKs perfdhcp received: the second exchange
// (REQUEST-ACK) block's received packets.
func perfdhcpAcks(out string) int {
	m := perfdhcpRcv.FindAllStringSubmatch(out, -1)
	if len(m) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(m[1][1])
	return n
}
