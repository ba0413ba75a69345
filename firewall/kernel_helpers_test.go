package firewall

import (
	"regexp"
	"strings"
	"testing"

	"gatewayd/lab"
)

// openIn opens a Firewall inside ns and closes it when the test ends.
func openIn(t testing.TB, ns *lab.Namespace) *Firewall {
	t.Helper()
	var fw *Firewall
	err := ns.Do(func() error {
		var err error
		fw, err = Open(Options{Logger: lab.Logger(t)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fw.Close() })
	return fw
}

// listTable is `nft list table inet gatewayd` inside ns with counter values
// and handles removed, so two listings compare by content.
func listTable(t testing.TB, ns *lab.Namespace) string {
	t.Helper()
	out := ns.MustRun(t, "nft", "list", "table", "inet", "gatewayd")
	return counterValues.ReplaceAllString(out, "packets N bytes N")
}

var counterValues = regexp.MustCompile(`packets \d+ bytes \d+`)

// nftLoad loads text with nft -f inside ns.
func nftLoad(t testing.TB, ns *lab.Namespace, text string) {
	t.Helper()
	path := t.TempDir() + "/ruleset.nft"
	if err := writeFile(path, text); err != nil {
		t.Fatal(err)
	}
	ns.MustRun(t, "nft", "-f", path)
}

func trimLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return strings.Join(out, "\n")
}
