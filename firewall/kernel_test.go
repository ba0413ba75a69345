package firewall

import (
	"os"
	"testing"
	"time"

	"gatewayd/lab"
)

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }

// TestEncodingMatchesNft applies the seed ruleset through netlink in one
// namespace and loads its rendering with nft -f in another: nft must list
// both tables identically.
func TestEncodingMatchesNft(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	a, err := l.Namespace("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Namespace("b")
	if err != nil {
		t.Fatal(err)
	}
	r := Build(seedConfig(t))
	fw := openIn(t, a)
	if err := fw.Set(r); err != nil {
		t.Fatal(err)
	}
	nftLoad(t, b, r.Render())
	got, want := listTable(t, a), listTable(t, b)
	if got != want {
		t.Errorf("netlink-applied table differs from nft -f:\n--- netlink\n%s\n--- nft -f\n%s", got, want)
	}
}

// TestLargeConfig applies and verifies 1,000 zones, then a changed ruleset.
func TestLargeConfig(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	ns, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	fw := openIn(t, ns)
	r := Build(parseConfig(t, manyZones(1000)))
	start := time.Now()
	if err := fw.Set(r); err != nil {
		t.Fatal(err)
	}
	t.Logf("1000 zones: %d chains, %d rules applied and verified in %v", len(r.Chains), ruleCount(r), time.Since(start))
	r2 := Build(parseConfig(t, manyZones(999)))
	start = time.Now()
	if err := fw.Set(r2); err != nil {
		t.Fatal(err)
	}
	t.Logf("reload to 999 zones in %v", time.Since(start))
}

func ruleCount(r *Ruleset) int {
	n := 0
	for _, c := range r.Chains {
		n += len(c.Rules)
	}
	return n
}
