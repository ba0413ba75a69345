package firewall

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }

// TestEncodingMatchesNft applies each golden ruleset through netlink in one
// namespace and loads its rendering with nft -f in another: nft must list
// both tables identically, so the rendering is exactly what Set applies.
func TestEncodingMatchesNft(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	a, err := l.Namespace("a")
	if err != nil {
		t.Fatal(err)
	}
	fw := openIn(t, a)
	for i, tc := range []struct{ name, config string }{
		{"seed", "../etc/gateway.toml"},
		{"nozones", "testdata/nozones.toml"},
		{"outside", "testdata/outside.toml"},
		{"many", "testdata/many.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := l.Namespace(fmt.Sprintf("b%d", i))
			if err != nil {
				t.Fatal(err)
			}
			r := Build(loadConfig(t, tc.config))
			// A fresh table: a rebuild keeps the chains that stay where
			// they were, so nft would list them in another order.
			if err := fw.Purge(); err != nil {
				t.Fatal(err)
			}
			if err := fw.Set(r); err != nil {
				t.Fatal(err)
			}
			nftLoad(t, b, r.Render())
			got, want := listTable(t, a), listTable(t, b)
			if got != want {
				t.Errorf("netlink-applied table differs from nft -f:\n%s", unified(splitLines(want), splitLines(got)))
			}
		})
	}
}

// TestSetIdempotent: the same ruleset twice is one batch; a table changed
// behind gatewayd's back is put back.
func TestSetIdempotent(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	ns, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	fw := openIn(t, ns)
	if err := fw.Set(Build(seedConfig(t))); err != nil {
		t.Fatal(err)
	}
	n := fw.Batches()
	for range 3 {
		if err := fw.Set(Build(seedConfig(t))); err != nil {
			t.Fatal(err)
		}
	}
	if fw.Batches() != n {
		t.Errorf("setting the same ruleset again sent %d batches", fw.Batches()-n)
	}
	ns.MustRun(t, "nft", "delete", "rule", "inet", "gatewayd", "in_lan", "handle",
		ruleHandle(t, ns, "in_lan", `tcp dport 22`))
	if err := fw.Set(Build(seedConfig(t))); err != nil {
		t.Fatal(err)
	}
	if fw.Batches() != n+1 {
		t.Errorf("a tampered table was not restored (%d batches)", fw.Batches()-n)
	}
	if !strings.Contains(listTable(t, ns), "tcp dport 22 accept") {
		t.Error("the deleted rule is still missing")
	}
}

// ruleHandle finds the handle of the first rule of chain containing text.
func ruleHandle(t *testing.T, ns *lab.Namespace, chain, text string) string {
	t.Helper()
	out := ns.MustRun(t, "nft", "-a", "list", "chain", "inet", "gatewayd", chain)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, text) {
			if _, h, ok := strings.Cut(line, "# handle "); ok {
				return strings.TrimSpace(h)
			}
		}
	}
	t.Fatalf("no rule with %q in chain %s:\n%s", text, chain, out)
	return ""
}

// otherTables belong to other programs: a distro firewall, iptables-nft.
const otherTables = `table inet other {
	counter seen { }
	set blocked {
		type ipv4_addr
		elements = { 198.51.100.7 }
	}
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr @blocked drop
		counter name "seen"
	}
}
table ip filter {
	chain INPUT {
		type filter hook input priority filter; policy accept;
		ip saddr 198.51.100.8 counter drop
	}
}
`

// TestOtherTablesSurvive: another program's tables are untouched by start,
// reload, a changed ruleset, stop, a restart and the removal command.
func TestOtherTablesSurvive(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	ns, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	nftLoad(t, ns, otherTables)
	others := func() string {
		return ns.MustRun(t, "nft", "-a", "list", "table", "inet", "other") + ns.MustRun(t, "nft", "-a", "list", "table", "ip", "filter")
	}
	want := others()
	check := func(when string) {
		t.Helper()
		if got := others(); got != want {
			t.Errorf("after %s the other tables changed:\n%s", when, unified(splitLines(want), splitLines(got)))
		}
	}
	fw := openIn(t, ns)
	if err := fw.Set(Build(seedConfig(t))); err != nil {
		t.Fatal(err)
	}
	check("start")
	if err := fw.Set(seedWith(t, `forward = ["upstream", "lab"]`, `forward = ["upstream"]`)); err != nil {
		t.Fatal(err)
	}
	check("reload")
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	check("stop")
	fw = openIn(t, ns)
	if err := fw.Set(Build(seedConfig(t))); err != nil {
		t.Fatal(err)
	}
	check("restart")
	if err := fw.Purge(); err != nil {
		t.Fatal(err)
	}
	check("purge")
	tables := ns.MustRun(t, "nft", "list", "tables")
	if strings.Contains(tables, "gatewayd") || !strings.Contains(tables, "table inet other") || !strings.Contains(tables, "table ip filter") {
		t.Errorf("after purge the tables are:\n%s", tables)
	}
	if err := fw.Purge(); err != nil {
		t.Errorf("purging twice: %v", err)
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

// TestRefusedBatchKeepsPrevious: a ruleset the kernel refuses (a jump to a
// chain that does not exist) changes nothing, and the error names the rule.
func TestRefusedBatchKeepsPrevious(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	ns, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	fw := openIn(t, ns)
	good := Build(seedConfig(t))
	if err := fw.Set(good); err != nil {
		t.Fatal(err)
	}
	before := listTable(t, ns)
	bad := Build(seedConfig(t))
	bad.Chains[0].Rules = append(bad.Chains[0].Rules, rule(Jump("no_such_chain")))
	err = fw.Set(bad)
	if err == nil {
		t.Fatal("the kernel accepted a jump to a missing chain")
	}
	for _, want := range []string{"adding a rule to chain input", "the previous ruleset is still in place"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if after := listTable(t, ns); after != before {
		t.Errorf("a refused batch changed the table:\n%s", unified(splitLines(before), splitLines(after)))
	}
	n := fw.Batches()
	if err := fw.Set(good); err != nil || fw.Batches() != n {
		t.Errorf("setting the running ruleset again: %v, %d batches", err, fw.Batches()-n)
	}
}
