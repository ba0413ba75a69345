package aliases

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemovable(t *testing.T) {
	prim := func(prefix, label string) kernelAddr {
		k := ka(prefix, label)
		k.Primary = true
		return k
	}
	tests := []struct {
		name string
		k    kernelAddr
		rec  string // the recorded label
		want string // substring of the reason; empty: removable
	}{
		{"an alias, secondary", ka("192.168.1.3/24", "eth1:2"), "eth1:2", ""},
		{"an alias, secondary, relabelled meanwhile", ka("192.168.1.3/24", "eth1:7"), "eth1:2", ""},
		{"an alias first in its subnet", prim("10.0.0.1/24", "eth1:3"), "eth1:3", ""},
		{"a bare-labelled secondary", ka("192.168.1.77/24", "eth1"), "eth1", ""},
		{"the NIC's own address", prim("192.168.1.10/24", "eth1"), "eth1", "the NIC's own address (labelled eth1, the first address of 192.168.1.0/24)"},
		{"first in its subnet, another label recorded", prim("10.0.0.1/24", "eth1:3"), "eth1:9", `its label eth1:3 is not the recorded "eth1:9"`},
		{"a label of another NIC", ka("192.168.1.3/24", "eth0:2"), "eth0:2", "its label eth0:2 is not one gatewayd gives on eth1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := removable("eth1", tt.k, Alias{Prefix: tt.k.Prefix, Label: tt.rec})
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("removable = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestForgedRecordNeverRemovesThePrimary plants ownership records naming
// the NIC's own address, as an unprivileged user could in a world-writable
// state directory: one outside the record's history is refused at Open;
// one that forges the history too makes Set and Purge refuse to remove it,
// say so, and forget the entry.
func TestForgedRecordNeverRemovesThePrimary(t *testing.T) {
	r := newRig(t)
	path := filepath.Join(r.dir, recordFile)
	plant := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	entry := `{"interface": "eth1", "prefix": "192.168.1.10/24", "label": "eth1"}`
	for name, tt := range map[string]struct{ content, want string }{
		"outside the history": {`{"version": 2, "addresses": [` + entry + `], "held": {}}`,
			"192.168.1.10/24 on eth1 is not among the addresses the configuration ever asked gatewayd to hold there"},
		"version 1, bare label": {`{"version": 1, "addresses": [` + entry + `]}`,
			`label "eth1" is not one gatewayd gave on eth1`},
	} {
		plant(tt.content)
		_, err := r.tryOpen(t, Options{Interface: "eth1", StateDir: r.dir})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Open = %v, want an error naming %s and saying %q", name, err, path, tt.want)
		}
	}

	forged := `{"version": 2, "addresses": [` + entry + `], "held": {"eth1": ["192.168.1.10/24"]}}`
	refusal := "not removing 192.168.1.10/24 (label eth1) from eth1: it is the NIC's own address"
	plant(forged)
	n := r.open(t)
	before := n.Writes()
	res, err := n.Set(context.Background(), []Alias{router})
	if err == nil || !strings.Contains(err.Error(), refusal) {
		t.Fatalf("Set with a forged record: %v, want %q", err, refusal)
	}
	if len(res.Done) != 1 || res.Done[0].Op != OpAdd || n.Writes()-before != 1 {
		t.Errorf("Set with a forged record did %q in %d writes; want the router's add only", res.Done, n.Writes()-before)
	}
	r.wantAddrs(t, map[string]string{primary: "eth1", "192.168.1.1/24": "eth1:0"})
	if _, owned := n.owned(pfx(primary)); owned {
		t.Error("the forged entry is still taken as gatewayd's")
	}
	if res := set(t, n, router); res.Changed() {
		t.Errorf("a second Set changed %q", res.Done)
	}
	n.Close()

	plant(forged)
	n = r.open(t)
	removed, err := n.Purge(context.Background())
	if err == nil || !strings.Contains(err.Error(), refusal) || len(removed) != 0 {
		t.Fatalf("Purge with a forged record: removed %v, %v; want nothing and %q", removed, err, refusal)
	}
	r.wantAddrs(t, map[string]string{primary: "eth1", "192.168.1.1/24": "eth1:0"})
}

// TestAdoptTakesBackExactMatches starts with a lost record and leftovers
// of an old /etc/network/interfaces: only the exact match is adopted, the
// conflict for it says so, and from then on it is gatewayd's.
func TestAdoptTakesBackExactMatches(t *testing.T) {
	r := newRig(t)
	r.gw.MustRun(t, "ip", "addr", "add", "192.168.1.1/24", "dev", "eth1", "label", "eth1:0")   // router, exactly
	r.gw.MustRun(t, "ip", "addr", "add", "192.168.1.2/24", "dev", "eth1", "label", "eth1:old") // dhcp, another label
	r.gw.MustRun(t, "ip", "addr", "add", "192.168.1.3/25", "dev", "eth1", "label", "eth1:2")   // dns, another length
	n := r.open(t)
	res := set(t, n, router, dhcp, dns)
	if len(res.Conflicts) != 3 || res.Changed() {
		t.Fatalf("Set over the leftovers: %+v, want three conflicts", res)
	}
	hint := "it matches alias router exactly: run `gatewayd adopt` or remove it"
	for _, c := range res.Conflicts {
		if got := strings.Contains(c.Reason, hint); got != (c.Alias.Name == "router") {
			t.Errorf("conflict of %s: %q", c.Alias.Name, c.Reason)
		}
	}

	own := Alias{Name: "own", Prefix: pfx(primary), Label: "eth1"}
	if adopted, err := n.Adopt([]Alias{own}); len(adopted) != 0 || err == nil ||
		!strings.Contains(err.Error(), `alias own (192.168.1.10/24): label "eth1": label must be eth1:<something>`) {
		t.Errorf("Adopt of the NIC's own address = %v, %v; want it refused", adopted, err)
	}
	adopted, err := n.Adopt([]Alias{router, dhcp, dns})
	if fmt.Sprint(adopted) != "[router (192.168.1.1/24)]" || err != nil {
		t.Errorf("Adopt = %v, %v; want the router only", adopted, err)
	}
	if n.Writes() != 0 {
		t.Errorf("Adopt made %d netlink writes", n.Writes())
	}
	if again, err := n.Adopt([]Alias{router}); err != nil || len(again) != 0 {
		t.Errorf("Adopt again: %v, %v; want nothing", again, err)
	}
	n.Close()

	// Durable: after a restart the router is gatewayd's, the others not.
	n = r.open(t)
	res = set(t, n, router, dhcp, dns)
	if len(res.Conflicts) != 2 || res.Changed() {
		t.Fatalf("Set after adopting: %+v, want the two other conflicts", res)
	}
	res = set(t, n, dhcp, dns)
	if len(res.Done) != 1 || res.Done[0].String() != "ip addr del 192.168.1.1/24 dev eth1" {
		t.Fatalf("Set without the adopted router: %q, want it removed", res.Done)
	}
}

// TestPurgeNamesOnlyWhatItRemoved loses an owned address to someone else
// before purging: Purge forgets it but does not claim it.
func TestPurgeNamesOnlyWhatItRemoved(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	set(t, n, router, dhcp)
	r.gw.MustRun(t, "ip", "addr", "del", "192.168.1.2/24", "dev", "eth1")
	removed, err := n.Purge(context.Background())
	if err != nil || fmt.Sprint(removed) != "[router (192.168.1.1/24)]" {
		t.Fatalf("Purge = %v, %v; want the router only", removed, err)
	}
	r.wantAddrs(t, map[string]string{primary: "eth1"})
	if removed, err := n.Purge(context.Background()); err != nil || len(removed) != 0 {
		t.Errorf("a second Purge = %v, %v; want nothing", removed, err)
	}
}

func TestRecordHistory(t *testing.T) {
	dir := t.TempDir()
	r, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.hold("eth1", []Alias{router, dhcp})
	r.put("eth1", router)
	r.put("eth0", al("old", "10.9.9.9/24", "eth0:0"))
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	r2, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.held[addrKey{"eth1", dhcp.Prefix}] || !r2.held[addrKey{"eth0", pfx("10.9.9.9/24")}] {
		t.Errorf("history after a round trip: %v", r2.held)
	}
	// dhcp no longer wanted nor owned: forgotten; router still owned: kept.
	if !r2.hold("eth1", nil) || r2.held[addrKey{"eth1", dhcp.Prefix}] || !r2.held[addrKey{"eth1", router.Prefix}] {
		t.Errorf("history after hold(nil): %v", r2.held)
	}
	if r2.hold("eth1", nil) {
		t.Error("hold of the same set reported a change")
	}

	// A version 1 record of gatewayd's own is read and its entries held.
	v1 := `{"version": 1, "addresses": [{"interface": "eth1", "prefix": "192.168.1.1/24", "label": "eth1:0", "name": "router"}]}`
	if err := os.WriteFile(filepath.Join(dir, recordFile), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	r3, err := loadRecord(dir)
	if err != nil {
		t.Fatalf("version 1 record: %v", err)
	}
	if _, ok := r3.owns("eth1", router.Prefix); !ok || !r3.held[addrKey{"eth1", router.Prefix}] {
		t.Errorf("version 1 record read as %v, held %v", r3.addrs, r3.held)
	}
	if err := r3.save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, recordFile))
	var rj recordJSON
	if err := json.Unmarshal(b, &rj); err != nil || rj.Version != recordVersion {
		t.Errorf("rewritten as %s (%v), want version %d", b, err, recordVersion)
	}
}
