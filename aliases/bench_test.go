package aliases

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// BenchmarkSet250 reports, side by side in one lab: Set bringing 250 aliases
// from nothing onto a NIC (netlink adds, one record write, gratuitous ARP),
// a Set of the same 250 (a no-op: one address dump, no write), and `ip -batch`
// adding the same 250 addresses on a twin NIC.
func BenchmarkSet250(b *testing.B) {
	lab.Require(b)
	const n = 250
	want := make([]Alias, n)
	var batch strings.Builder
	for i := range want {
		p := netip.MustParsePrefix(fmt.Sprintf("10.64.%d.%d/16", 1+i/250, 1+i%250))
		want[i] = Alias{Name: fmt.Sprintf("a%d", i), Prefix: p, Label: fmt.Sprintf("eth1:%d", i)}
		fmt.Fprintf(&batch, "addr add %s dev eth1 label eth1:%d\n", p, i)
	}
	for b.Loop() {
		l := lab.New(b)
		gw, err := l.Namespace("gw")
		if err != nil {
			b.Fatal(err)
		}
		twin, err := l.Namespace("twin")
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Link(gw, "eth1", twin, "eth1"); err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		var nic *NIC
		if err := gw.Do(func() (err error) {
			nic, err = Open(Options{Interface: "eth1", StateDir: dir, Announce: Announce{Count: 1}})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := nic.Set(context.Background(), want); err != nil {
			b.Fatal(err)
		}
		first := time.Since(t0)
		writes := nic.Writes()
		t0 = time.Now()
		if _, err := nic.Set(context.Background(), want); err != nil {
			b.Fatal(err)
		}
		noop := time.Since(t0)
		if nic.Writes() != writes {
			b.Fatalf("the no-op Set wrote %d times", nic.Writes()-writes)
		}
		nic.Close()
		bf := filepath.Join(dir, "batch")
		os.WriteFile(bf, []byte(batch.String()), 0o644)
		t0 = time.Now()
		twin.MustRun(b, "ip", "-batch", bf)
		ipBatch := time.Since(t0)
		b.ReportMetric(float64(first.Microseconds())/1000, "ms-set-250")
		b.ReportMetric(float64(noop.Microseconds())/1000, "ms-noop-set")
		b.ReportMetric(float64(ipBatch.Microseconds())/1000, "ms-ip-batch-250")
		b.Logf("250 aliases: Set %v, ip -batch %v (incl. its process start; ratio %.2f); no-op Set %v",
			first.Round(time.Microsecond), ipBatch.Round(time.Microsecond), float64(first)/float64(ipBatch), noop.Round(time.Microsecond))
	}
}
