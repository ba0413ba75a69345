package firewall

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gatewayd/lab"
)

// benchRounds is how many times each measurement is repeated; the median
// is reported. Runs alternate between gatewayd and nft so both see the same
// machine load.
const benchRounds = 5

// BenchmarkApply compares, side by side in one run, applying a ruleset with
// Firewall.Set (Build included, read-back verification included) and loading
// the same rendered text with `nft -f`, for 10, 100 and 1,000 zones:
//
//   - fresh: into a new namespace without the table;
//   - replace: over the table holding the other variant of the ruleset
//     (Set's flush-and-rebuild batch; for nft, one file that deletes the
//     table and loads the text, the usual atomic replacement).
//
// Metrics are milliseconds per apply, medians of benchRounds runs. Run it
// with `make bench` or
//
//	go test -run '^$' -bench BenchmarkApply -benchtime 1x ./firewall/
func BenchmarkApply(b *testing.B) {
	lab.Require(b)
	if _, err := exec.LookPath("nft"); err != nil {
		b.Skip("nft is not installed")
	}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("zones=%d", n), func(b *testing.B) {
			a, v := manyZones(n, false), manyZones(n, true)
			ra, rv := Build(a), Build(v)
			dir := b.TempDir()
			fresh := filepath.Join(dir, "fresh.nft")
			replace := filepath.Join(dir, "replace.nft")
			if err := os.WriteFile(fresh, []byte(ra.Render()), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(replace, []byte("table inet gatewayd\ndelete table inet gatewayd\n"+ra.Render()), 0o644); err != nil {
				b.Fatal(err)
			}
			var gwFresh, nftFresh, gwReplace, nftReplace []time.Duration
			for i := 0; i < b.N; i++ {
				l := lab.New(b)
				for round := 0; round < benchRounds; round++ {
					ns := newNamespace(b, l, fmt.Sprintf("g%d", round))
					fw := openIn(b, ns)
					gwFresh = append(gwFresh, timeIt(b, func() error { return fw.Set(Build(a)) }))
					gwReplace = append(gwReplace, timeSetReplace(b, fw, rv, a))

					ns = newNamespace(b, l, fmt.Sprintf("n%d", round))
					nftFresh = append(nftFresh, timeIt(b, func() error { return nftIn(ns, fresh) }))
					// The variant first (not timed), then the timed replacement.
					if err := nftIn(ns, writeReplace(b, dir, rv)); err != nil {
						b.Fatal(err)
					}
					nftReplace = append(nftReplace, timeIt(b, func() error { return nftIn(ns, replace) }))
					_ = fw.Close()
				}
				_ = l.Close()
			}
			report(b, "gatewayd-fresh-ms", gwFresh)
			report(b, "nft-fresh-ms", nftFresh)
			report(b, "gatewayd-replace-ms", gwReplace)
			report(b, "nft-replace-ms", nftReplace)
			b.Logf("%d zones, %d chains, %d rules: fresh gatewayd %v nft %v; replace gatewayd %v nft %v",
				n, len(ra.Chains), ruleCount(ra), median(gwFresh), median(nftFresh), median(gwReplace), median(nftReplace))
		})
	}
}

// timeSetReplace applies from (not timed), then times building and
// setting to over it.
func timeSetReplace(b *testing.B, fw *Firewall, from *Ruleset, to Policy) time.Duration {
	b.Helper()
	if err := fw.Set(from); err != nil {
		b.Fatal(err)
	}
	return timeIt(b, func() error { return fw.Set(Build(to)) })
}

func writeReplace(b *testing.B, dir string, r *Ruleset) string {
	b.Helper()
	path := filepath.Join(dir, "variant.nft")
	if err := os.WriteFile(path, []byte("table inet gatewayd\ndelete table inet gatewayd\n"+r.Render()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func newNamespace(b *testing.B, l *lab.Lab, name string) *lab.Namespace {
	b.Helper()
	ns, err := l.Namespace(name)
	if err != nil {
		b.Fatal(err)
	}
	return ns
}

// nftIn runs `nft -f path` in ns: forked from a thread inside the
// namespace, so no `ip netns exec` is timed with it.
func nftIn(ns *lab.Namespace, path string) error {
	return ns.Do(func() error {
		out, err := exec.Command("nft", "-f", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nft -f %s: %w: %s", path, err, out)
		}
		return nil
	})
}

func timeIt(b *testing.B, fn func() error) time.Duration {
	b.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(b *testing.B, unit string, ds []time.Duration) {
	b.ReportMetric(float64(median(ds).Microseconds())/1000, unit)
}
