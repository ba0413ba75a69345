package daemon_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// BenchmarkScrapeCost (issue #16): the whole daemon serving DNS and DHCP at
// fixed rates, its CPU per query and per DHCP exchange (user + system of the
// daemon process, from /proc) measured without and with a scraper fetching
// /metrics and the status page once a second, side by side in one run.
func BenchmarkScrapeCost(b *testing.B) {
	lab.RequireTools(b, "dnsperf", "perfdhcp")
	const dnsRate, dhcpRate, seconds = 10000, 500, 8
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

		measure := func(scrape bool) (dnsUS, dhcpUS float64, lost string) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if scrape {
				go func() {
					for ctx.Err() == nil {
						scrapeOnce(client, "http://192.0.2.1:9253/metrics")
						scrapeOnce(client, "http://192.0.2.1:9253/")
						select {
						case <-ctx.Done():
						case <-time.After(time.Second):
						}
					}
				}()
			}
			before := cpu(pid)
			out := client.MustRun(b, "dnsperf", "-s", "192.0.2.3", "-d", queries, "-l", strconv.Itoa(seconds), "-Q", strconv.Itoa(dnsRate), "-t", "2")
			dnsCPU := cpu(pid) - before
			sent, lostQ := dnsperfCounts(out)
			before = cpu(pid)
			// 80 clients: the site's pool has 100 addresses; renewals.
			pd, _ := client.Run(ctx, "perfdhcp", "-4", "-r", strconv.Itoa(dhcpRate), "-R", "80", "-p", strconv.Itoa(seconds), "-l", "192.0.2.60", "192.0.2.2")
			dhcpCPU := cpu(pid) - before
			acks := perfdhcpAcks(pd)
			if sent == 0 || acks == 0 {
				b.Fatalf("no load: dnsperf %d queries, perfdhcp %d exchanges\n%s\n%s", sent, acks, out, pd)
			}
			return float64(dnsCPU.Microseconds()) / float64(sent), float64(dhcpCPU.Microseconds()) / float64(acks), fmt.Sprintf("%d of %d", lostQ, sent)
		}
		dnsOff, dhcpOff, lostOff := measure(false)
		dnsOn, dhcpOn, lostOn := measure(true)
		fmt.Printf("\nscraping once a second, whole daemon (DNS %d qps local names, DHCP %d exchanges/s, %d s each):\n", dnsRate, dhcpRate, seconds)
		fmt.Printf("  %-18s %14s %14s %10s\n", "", "no scraper", "scraper 1/s", "ratio")
		fmt.Printf("  %-18s %11.2f µs %11.2f µs %9.2f×\n", "DNS CPU/query", dnsOff, dnsOn, dnsOn/dnsOff)
		fmt.Printf("  %-18s %11.1f µs %11.1f µs %9.2f×\n", "DHCP CPU/exchange", dhcpOff, dhcpOn, dhcpOn/dhcpOff)
		fmt.Printf("  %-18s %14s %14s\n", "DNS lost", lostOff, lostOn)
		b.ReportMetric(dnsOff, "dns-µs/q")
		b.ReportMetric(dnsOn, "dns-scraped-µs/q")
		b.ReportMetric(dhcpOff, "dhcp-µs/x")
		b.ReportMetric(dhcpOn, "dhcp-scraped-µs/x")
	}
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
