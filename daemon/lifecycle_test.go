package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestLifecycle walks one gateway through start, no-op reload, restart with an
// edited config, an alias deleted by hand, and purge; the primary address and
// the hand-added one survive all of it.
func TestLifecycle(t *testing.T) {
	g := newGateway(t)
	g.start()
	g.wantAddrs(seeded)

	// A reload of the same file changes nothing and writes nothing to the kernel.
	g.noKernelWrites("a no-op reload", func() {
		out, err := g.cli("reload")
		if err != nil || strings.TrimSpace(out) != "no changes" {
			t.Fatalf("no-op reload: %q, %v", out, err)
		}
	})

	// SIGTERM leaves the aliases in place.
	g.stop()
	g.wantAddrs(seeded)

	// A restart with an edited config removes the alias it no longer has.
	text, _ := os.ReadFile(g.conf)
	edited := strings.Replace(string(text), "[[alias]]\nname = \"lab\"\naddress = \"203.0.113.1/24\"\n", "", 1)
	edited = strings.Replace(edited, "forward = [\"upstream\", \"lab\"]", "forward = [\"upstream\"]", 1)
	g.write(edited)
	g.start()
	g.wantAddrs(map[string]string{"203.0.113.1/24": "", "198.51.100.250/24": "eth1", "198.51.100.77/24": "eth1:hand", "198.51.100.3/24": "eth1:2"})

	// An alias deleted by someone else is back within a second.
	g.ns.MustRun(t, "ip", "addr", "del", "198.51.100.3/24", "dev", "eth1")
	lab.Eventually(t, time.Second, func() error {
		if g.addrs()["198.51.100.3/24"] != "eth1:2" {
			return fmt.Errorf("198.51.100.3/24 not back: %v", g.addrs())
		}
		return nil
	})

	// Purge refuses while the daemon runs, then removes only what gatewayd added.
	if _, err := g.cli("purge"); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("purge with the daemon running: %v", err)
	}
	g.stop()
	out, err := g.cli("purge")
	if err != nil {
		t.Fatalf("purge: %v\n%s", err, out)
	}
	for _, want := range []string{"removed router (198.51.100.1/24) from eth1", "removed table inet gatewayd", "removed gatewayd's routes and sysctls"} {
		if !strings.Contains(out, want) {
			t.Errorf("purge said %q, want it to say %q", out, want)
		}
	}
	got := g.addrs()
	if len(got) != 2 || got["198.51.100.250/24"] != "eth1" || got["198.51.100.77/24"] != "eth1:hand" {
		t.Errorf("after purge eth1 has %v; want only the primary and the hand-added address", got)
	}
	// Nothing is left to remove, and purge says nothing it did not do.
	if out, err := g.cli("purge"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("a second purge: %q %v, want nothing removed and nothing said", out, err)
	}
}

// TestReloadRefused sends broken configs to a running daemon: every reload
// exits non-zero with file:line:column, and nothing changes.
func TestReloadRefused(t *testing.T) {
	g := newGateway(t)
	g.start()
	good, _ := os.ReadFile(g.conf)
	before := g.addrs()
	status := func() string {
		out, err := g.cli("status", "--json")
		if err != nil {
			t.Fatal(err)
		}
		return regexp.MustCompile(`"generation": \d+`).FindString(out)
	}
	gen := status()
	cases := []struct{ name, old, new string }{
		{"syntax", `name = "dns"`, `name = "dns`},
		{"duplicate alias name", `name = "lab"`, `name = "dns"`},
		{"duplicate address", `address = "203.0.113.1/24"`, `address = "198.51.100.3/24"`},
		{"conflicting subnets", `address = "203.0.113.1/24"`, `address = "198.51.100.9/16"`},
		{"unknown alias for role", "[dns]\nalias = \"dns\"", "[dns]\nalias = \"nope\""},
		{"two roles on one alias", "[dns]\nalias = \"dns\"", "[dns]\nalias = \"router\""},
		{"long label", `name = "lab"`, "name = \"lab\"\nlabel = \"eth1:muchtoolong\""},
		{"overlapping zones", `subnets = ["203.0.113.0/24"]`, `subnets = ["198.51.100.0/25"]`},
		{"unknown service", `allow = ["dns"]`, `allow = ["dns", "telnet"]`},
		{"unknown zone", `forward = ["upstream"]`, `forward = ["upstream", "dmz"]`},
		{"unknown key", `[router]`, "[router]\nmasq = true"},
		{"range outside subnet", `[dns]`, "[dhcp]\nalias = \"dhcp\"\n[[dhcp.pool]]\nrange = \"192.0.2.10-192.0.2.20\"\n[dns]"},
		{"duplicate mac", `[dns]`, "[dhcp]\nalias = \"dhcp\"\n[[dhcp.pool]]\nrange = \"198.51.100.100-198.51.100.150\"\n[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\naddress = \"198.51.100.10\"\n[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\naddress = \"198.51.100.11\"\n[dns]"},
	}
	pos := regexp.MustCompile(`gateway\.toml:\d+:\d+: `)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tc.old, tc.new, 1)
			if bad == string(good) {
				t.Fatalf("case does not change the config")
			}
			g.write(bad)
			defer g.write(string(good))
			out, err := g.cli("reload")
			if err == nil {
				t.Fatalf("reload accepted a broken config:\n%s", out)
			}
			if !pos.MatchString(out) {
				t.Errorf("refusal lacks file:line:column:\n%s", out)
			}
		})
	}
	g.write(string(good))
	if after := g.addrs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("addresses changed: %v → %v", before, after)
	}
	if now := status(); now != gen {
		t.Errorf("running generation changed: %s → %s", gen, now)
	}
	if out, err := g.cli("reload"); err != nil || strings.TrimSpace(out) != "no changes" {
		t.Errorf("the daemon does not run the good config any more: %q %v", out, err)
	}
}

// TestReloadTouchesOnlyWhatChanged removes an alias from the middle of the
// list: only its address goes; the aliases after it keep their address and
// position-numbered label (no delete and add, so their roles keep serving).
func TestReloadTouchesOnlyWhatChanged(t *testing.T) {
	g := newGateway(t)
	g.start()
	text, _ := os.ReadFile(g.conf)
	g.write(strings.Replace(string(text), "[[alias]]\nname = \"dhcp\"\naddress = \"198.51.100.2/24\"\n", "", 1))
	mon, err := g.ns.Start(context.Background(), "ip", "-o", "monitor", "address")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	out, err := g.cli("reload")
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	var addrSteps []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "ip addr") {
			addrSteps = append(addrSteps, line)
		}
	}
	if len(addrSteps) != 1 || addrSteps[0] != "ip addr del 198.51.100.2/24 dev eth1" {
		t.Errorf("reload did:\n%s\nwant only the removal of 198.51.100.2/24 among the address steps", out)
	}
	time.Sleep(300 * time.Millisecond)
	mon.Process.Kill()
	mon.Wait()
	for _, line := range strings.Split(strings.TrimSpace(g.lab.Output(mon)), "\n") {
		if !strings.Contains(line, "198.51.100.2/24") {
			t.Errorf("the reload touched another address: %s", line)
		}
	}
	g.wantAddrs(map[string]string{"198.51.100.2/24": "", "198.51.100.3/24": "eth1:2", "203.0.113.1/24": "eth1:3"})
}

// TestSecondDaemonRefused starts a second daemon on the same state: it is
// refused before it writes anything to the kernel, and the control socket is
// the owner's alone (0600).
func TestSecondDaemonRefused(t *testing.T) {
	g := newGateway(t)
	g.start()
	fi, err := os.Stat(filepath.Join(g.dir, "run", "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("control socket mode %v, want a 0600 socket", fi.Mode())
	}
	g.noKernelWrites("the refused daemon", func() {
		out, err := g.cli("run")
		if err == nil || !strings.Contains(out, "in use by another gatewayd") {
			t.Errorf("second daemon: %v\n%s", err, out)
		}
	})
	if out, err := g.cli("reload"); err != nil || strings.TrimSpace(out) != "no changes" {
		t.Errorf("the first daemon after the refusal: %q %v", out, err)
	}
}

// TestReloadRollsBack fails a reload halfway (the DNS role cannot bind its
// new address because another program holds the port): the reload exits
// non-zero, and the addresses, the ruleset and the running generation are
// as before.
func TestReloadRollsBack(t *testing.T) {
	g := newGateway(t)
	g.start()
	ruleset := func() string {
		out := g.ns.MustRun(t, "nft", "list", "table", "inet", "gatewayd")
		var keep []string
		for _, l := range strings.Split(out, "\n") {
			if !strings.Contains(l, "packets") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	beforeAddrs, beforeRules := g.addrs(), ruleset()
	defer squat(t, g, "198.51.100.53:53").Close()

	good, _ := os.ReadFile(g.conf)
	g.write(strings.Replace(string(good), `address = "198.51.100.3/24"`, `address = "198.51.100.53/24"`, 1))
	out, err := g.cli("reload")
	if err == nil || !strings.Contains(out, "the previous config is running again") {
		t.Fatalf("reload onto a taken port: %v\n%s", err, out)
	}
	if after := g.addrs(); fmt.Sprint(after) != fmt.Sprint(beforeAddrs) {
		t.Errorf("addresses after the rollback: %v, want %v", after, beforeAddrs)
	}
	if after := ruleset(); after != beforeRules {
		t.Errorf("ruleset after the rollback differs:\n%s\nwant:\n%s", after, beforeRules)
	}
	g.write(string(good))
	if out, err := g.cli("reload"); err != nil || strings.TrimSpace(out) != "no changes" {
		t.Errorf("after the rollback the good config is not the running one: %q %v", out, err)
	}
}
