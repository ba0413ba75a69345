package daemon_test

import (
	"context"
	"fmt"
	"github.com/miekg/dns"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// manyAliases is a site with n aliases on 10.64.0.0/16 (one subnet, one zone).
func manyAliases(dir string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[gateway]\ninterface = \"eth1\"\nhost = \"gw1\"\nstate_dir = %q\ncontrol_socket = %q\nprobe_timeout = \"0s\"\nlog_level = \"warn\"\n",
		dir+"/state", dir+"/run/control.sock")
	for i := range n {
		fmt.Fprintf(&b, "[[alias]]\nname = \"a%d\"\naddress = \"10.64.%d.%d/16\"\nlabel = \"eth1:%d\"\n", i, 1+i/250, 1+i%250, i)
	}
	b.WriteString("[zone.lan]\nsubnets = [\"10.64.0.0/16\"]\n")
	return b.String()
}

// BenchmarkAliases reports the time gatewayd takes to bring up 250 aliases from
// nothing (daemon start until it answers, probing off), the time of a no-op
// `gatewayd reload` (the whole CLI round trip), and `ip -batch` adding the same
// 250 addresses, measured side by side.
func BenchmarkAliases(b *testing.B) {
	lab.Require(b)
	const n = 250
	for b.Loop() {
		l := lab.New(b)
		gw, err := l.Namespace("gw")
		if err != nil {
			b.Fatal(err)
		}
		peer, err := l.Namespace("peer")
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Link(gw, "eth1", peer, "eth1"); err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		conf := filepath.Join(dir, "gateway.toml")
		os.WriteFile(conf, []byte(manyAliases(dir, n)), 0o644)

		start := time.Now()
		if _, err := gw.Start(context.Background(), bin, "run", "--config", conf); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := lab.Poll(ctx, func() error { _, err := gw.Run(ctx, bin, "status", "--config", conf); return err }); err != nil {
			b.Fatal(err)
		}
		cancel()
		up := time.Since(start)
		if got := strings.Count(gw.MustRun(b, "ip", "-4", "-o", "addr", "show", "dev", "eth1"), "inet "); got != n {
			b.Fatalf("%d addresses on eth1, want %d", got, n)
		}

		var reloads []time.Duration
		for range 20 {
			t0 := time.Now()
			out := gw.MustRun(b, bin, "reload", "--config", conf)
			reloads = append(reloads, time.Since(t0))
			if strings.TrimSpace(out) != "no changes" {
				b.Fatalf("no-op reload changed something: %s", out)
			}
		}
		sort.Slice(reloads, func(i, j int) bool { return reloads[i] < reloads[j] })

		var batch strings.Builder
		for i := range n {
			fmt.Fprintf(&batch, "addr add 10.64.%d.%d/16 dev eth1 label eth1:%d\n", 1+i/250, 1+i%250, i)
		}
		bf := filepath.Join(dir, "batch")
		os.WriteFile(bf, []byte(batch.String()), 0o644)
		t0 := time.Now()
		peer.MustRun(b, "ip", "-batch", bf)
		ipBatch := time.Since(t0)

		b.ReportMetric(float64(up.Microseconds())/1000, "ms-start-250")
		b.ReportMetric(float64(reloads[len(reloads)/2].Microseconds())/1000, "ms-noop-reload")
		b.ReportMetric(float64(ipBatch.Microseconds())/1000, "ms-ip-batch-250")
		b.Logf("250 aliases: gatewayd start %v (incl. process start), ip -batch %v (ratio %.2f); no-op reload median %v",
			up.Round(time.Millisecond), ipBatch.Round(time.Millisecond), float64(up)/float64(ipBatch), reloads[len(reloads)/2].Round(time.Microsecond))
	}
}

// BenchmarkMove reports the time from the claiming host's `gatewayd reload`
// to the client's first answered query on the moved DNS address, with the
// default probe settings (the old host released it just before). The client
// asks every 20 ms with a 20 ms timeout.
func BenchmarkMove(b *testing.B) {
	for b.Loop() {
		s := newTwoBoxes(b)
		s.client.MustRun(b, "ip", "addr", "add", "192.0.2.50/24", "dev", "eth0")
		s.gw1.write(defaultClaim(mustRead(s.gw1.conf)))
		s.gw2.write(defaultClaim(mustRead(s.gw2.conf)))
		s.gw1.start()
		s.gw2.start()
		if _, err := s.dig("nas.home.arpa"); err != nil {
			b.Fatal(err)
		}
		s.place("gw1", "gw2")
		s.gw1.write(defaultClaim(mustRead(s.gw1.conf)))
		s.gw2.write(defaultClaim(mustRead(s.gw2.conf)))
		if out, err := s.gw1.cli("reload"); err != nil {
			b.Fatalf("release: %v\n%s", err, out)
		}
		start := time.Now()
		reloaded := make(chan error, 1)
		go func() { _, err := s.gw2.cli("reload"); reloaded <- err }()
		var answered time.Duration
		err := s.client.Do(func() error {
			q := new(dns.Msg)
			q.SetQuestion("nas.home.arpa.", dns.TypeA)
			c := &dns.Client{Timeout: 20 * time.Millisecond}
			for time.Since(start) < 10*time.Second {
				if r, _, err := c.Exchange(q, "192.0.2.3:53"); err == nil && len(r.Answer) > 0 {
					answered = time.Since(start)
					return nil
				}
				time.Sleep(20 * time.Millisecond)
			}
			return fmt.Errorf("no answer within 10s of the claim")
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := <-reloaded; err != nil {
			b.Fatalf("claim: %v", err)
		}
		b.ReportMetric(float64(answered.Microseconds())/1000, "ms-claim-to-answer")
		b.Logf("DNS move: %v from gw2's reload to the client's first answer (default probe_timeout 500ms)", answered.Round(time.Millisecond))
	}
}

// defaultClaim drops the test site's fast probe and announce settings, so the
// move is measured with the defaults.
func defaultClaim(text string) string {
	return strings.NewReplacer("probe_timeout = \"300ms\"\n", "", "announce_count = 2\n", "", "announce_interval = \"300ms\"\n", "").Replace(text)
}
