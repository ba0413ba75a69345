package firewall

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

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
	for i, tc := range []struct {
		name   string
		policy Policy
	}{
		{"seed", seedPolicy()},
		{"nozones", nozonesPolicy()},
		{"outside", outsidePolicy()},
		{"many", manyPolicy()},
		{"wan", wanPolicy()},
		{"dhcpwan", dhcpWANPolicy()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := l.Namespace(fmt.Sprintf("b%d", i))
			if err != nil {
				t.Fatal(err)
			}
			r := Build(tc.policy)
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
	if err := fw.Set(Build(seedPolicy())); err != nil {
		t.Fatal(err)
	}
	n := fw.Batches()
	for range 3 {
		if err := fw.Set(Build(seedPolicy())); err != nil {
			t.Fatal(err)
		}
	}
	if fw.Batches() != n {
		t.Errorf("setting the same ruleset again sent %d batches", fw.Batches()-n)
	}
	ns.MustRun(t, "nft", "delete", "rule", "inet", "gatewayd", "in_lan", "handle",
		ruleHandle(t, ns, "in_lan", `tcp dport 22`))
	if err := fw.Set(Build(seedPolicy())); err != nil {
		t.Fatal(err)
	}
	if fw.Batches() != n+1 {
		t.Errorf("a tampered table was not restored (%d batches)", fw.Batches()-n)
	}
	if !strings.Contains(listTable(t, ns), `tcp dport 22 counter name "zone_lan_in" accept`) {
		t.Error("the deleted rule is still missing")
	}
	ns.MustRun(t, "nft", "chain", "inet", "gatewayd", "input", "{ policy accept; }")
	if err := fw.Set(Build(seedPolicy())); err != nil {
		t.Fatal(err)
	}
	if fw.Batches() != n+2 || !strings.Contains(listTable(t, ns), "type filter hook input priority filter; policy drop;") {
		t.Errorf("a base chain's policy changed by hand was not restored (%d batches):\n%s", fw.Batches()-n, chainOf(t, ns, "input"))
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
	if err := fw.Set(Build(seedPolicy())); err != nil {
		t.Fatal(err)
	}
	check("start")
	if err := fw.Set(Build(seedLanNotToLab())); err != nil {
		t.Fatal(err)
	}
	check("reload")
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	check("stop")
	fw = openIn(t, ns)
	if err := fw.Set(Build(seedPolicy())); err != nil {
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
	r := Build(manyZones(1000, false))
	start := time.Now()
	if err := fw.Set(r); err != nil {
		t.Fatal(err)
	}
	t.Logf("1000 zones: %d chains, %d rules applied and verified in %v", len(r.Chains), ruleCount(r), time.Since(start))
	r2 := Build(manyZones(999, false))
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
	good := Build(seedPolicy())
	if err := fw.Set(good); err != nil {
		t.Fatal(err)
	}
	before := listTable(t, ns)
	bad := Build(seedPolicy())
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

// TestStaleAnswersIgnored: answers left unread on the socket, as a timed-out
// or overrun exchange leaves them (here an error answer to a lookup of a
// table that does not exist), are not taken for the next batch's, and
// resync drops them; the socket is never re-dialled.
func TestStaleAnswersIgnored(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	ns, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	fw := openIn(t, ns)
	sock := fw.sock
	lookupMissing := func() {
		t.Helper()
		sock.seq++
		attrs := []byte("no_such_table\x00")
		data := append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, netlinkAttr(unix.NFTA_TABLE_NAME, attrs)...)
		if err := sock.write(appendMsg(nil, unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETTABLE, unix.NLM_F_REQUEST, sock.seq, data)); err != nil {
			t.Fatal(err)
		}
	}
	r := Build(seedPolicy())
	cur, err := sock.readTable()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := updateBatch(r, planUpdate(cur, r))
	if err != nil {
		t.Fatal(err)
	}
	lookupMissing()
	if kerrs, err := sock.sendBatch(msgs); err != nil || len(kerrs) != 0 {
		t.Fatalf("a stale error answer was taken for the batch's: %v %v", kerrs, err)
	}
	if err := fw.Set(r); err != nil {
		t.Fatal(err)
	}
	lookupMissing()
	if err := sock.resync(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := unix.Recvfrom(rawFD(t, sock), make([]byte, 4096), unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("after resync a read gives %v, want EAGAIN (nothing queued)", err)
	}
	if fw.sock != sock {
		t.Error("the socket was replaced")
	}
	if err := fw.Set(Build(seedLabSSH())); err != nil {
		t.Fatal(err)
	}
}

func netlinkAttr(typ uint16, data []byte) []byte {
	b, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: typ, Data: data}})
	if err != nil {
		panic(err)
	}
	return b
}

func rawFD(t *testing.T, s *nlSocket) int {
	t.Helper()
	var fd int
	if err := s.raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestForeignTableReplaced: a table inet gatewayd that gatewayd cannot
// update in place (made by someone else, its input chain on another
// priority) is replaced whole.
func TestForeignTableReplaced(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	ns, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	nftLoad(t, ns, "table inet gatewayd {\n\tchain input {\n\t\ttype filter hook input priority 10; policy accept;\n\t}\n}\n")
	fw := openIn(t, ns)
	r := Build(seedPolicy())
	if err := fw.Set(r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(listTable(t, ns), "type filter hook input priority filter; policy drop;") {
		t.Errorf("the foreign input chain is still there:\n%s", listTable(t, ns))
	}
	n := fw.Batches()
	if err := fw.Set(r); err != nil || fw.Batches() != n {
		t.Errorf("setting it again: %v, %d batches", err, fw.Batches()-n)
	}
}

func chainOf(t *testing.T, ns *lab.Namespace, chain string) string {
	return ns.MustRun(t, "nft", "list", "chain", "inet", "gatewayd", chain)
}
