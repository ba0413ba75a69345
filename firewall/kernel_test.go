package firewall

import (
	"os"
	"testing"

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
