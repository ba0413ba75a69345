package daemon_test

import (
	"context"
	"fmt"
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
