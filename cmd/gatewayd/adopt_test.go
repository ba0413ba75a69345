package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestAdoptTakesOverMatchingAddresses runs gatewayd adopt in a lab: an
// address added by hand that matches an alias exactly becomes gatewayd's
// (purge then removes it, as it did not before); one that differs in its
// label stays someone else's.
func TestAdoptTakesOverMatchingAddresses(t *testing.T) {
	lab.RequireTools(t, "ip", "nft")
	l := lab.New(t)
	gw, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := l.Namespace("peer")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Link(gw, "eth1", peer, "eth0"); err != nil {
		t.Fatal(err)
	}
	gw.MustRun(t, "ip", "addr", "add", "198.51.100.1/24", "dev", "eth1", "label", "eth1:0")
	gw.MustRun(t, "ip", "addr", "add", "198.51.100.2/24", "dev", "eth1", "label", "eth1:7")

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gateway.toml")
	text := fmt.Sprintf(`[gateway]
interface = "eth1"
state_dir = "%[1]s/state"
control_socket = "%[1]s/control.sock"

[[alias]]
name = "router"
address = "198.51.100.1/24"
label = "eth1:0"

[[alias]]
name = "dns"
address = "198.51.100.2/24"
label = "eth1:1"
`, dir)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	gatewayd := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := gw.Command(ctx, append([]string{os.Args[0]}, append(args, "--config", conf)...)...)
		cmd.Env = append(os.Environ(), "GATEWAYD_TEST_MAIN=1")
		out, err := lab.CombinedOutput(cmd)
		if err != nil {
			t.Fatalf("gatewayd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := gatewayd("purge"); strings.Contains(out, "198.51.100.") {
		t.Fatalf("purge before adopt removed an address added by hand:\n%s", out)
	}
	out := gatewayd("adopt")
	if !strings.Contains(out, "adopted router (198.51.100.1/24) on eth1") || strings.Contains(out, "198.51.100.2/24") {
		t.Errorf("gatewayd adopt printed\n%s\nwant 198.51.100.1/24 (matches router) and not 198.51.100.2/24 (its label is not dns's)", out)
	}
	out = gatewayd("purge")
	if !strings.Contains(out, "removed router (198.51.100.1/24) from eth1") || strings.Contains(out, "198.51.100.2/24") {
		t.Errorf("purge after adopt printed\n%s\nwant it to remove the adopted address only", out)
	}
	addrs := gw.MustRun(t, "ip", "-4", "-o", "addr", "show", "dev", "eth1")
	if strings.Contains(addrs, "198.51.100.1/24") || !strings.Contains(addrs, "198.51.100.2/24") {
		t.Errorf("after adopt and purge eth1 has\n%s\nwant 198.51.100.2/24 only", addrs)
	}
}
