package daemon_test

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestReloadChangesPolicy edits zone policy and aliases and reloads: each
// edit takes effect on real traffic from a client on the wire.
func TestReloadChangesPolicy(t *testing.T) {
	g := newGateway(t)
	client, err := g.lab.Namespace("client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.lab.Plug(g.sw, client, "eth0"); err != nil {
		t.Fatal(err)
	}
	client.MustRun(t, "ip", "addr", "add", "198.51.100.50/24", "dev", "eth0")
	g.start()
	iot, err := g.lab.Namespace("iot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.lab.Plug(g.sw, iot, "eth0"); err != nil {
		t.Fatal(err)
	}
	iot.MustRun(t, "ip", "addr", "add", "192.0.2.50/24", "dev", "eth0")
	from := client
	reaches := func(dst string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		return from.Ping(ctx, netip.MustParseAddr(dst)) == nil
	}
	reload := func(old, new string) {
		t.Helper()
		text, _ := os.ReadFile(g.conf)
		edited := strings.Replace(string(text), old, new, 1)
		if edited == string(text) {
			t.Fatalf("edit %q does not apply", old)
		}
		g.write(edited)
		if out, err := g.cli("reload"); err != nil {
			t.Fatalf("reload: %v\n%s", err, out)
		}
	}
	want := func(dst string, ok bool) {
		t.Helper()
		if got := reaches(dst); got != ok {
			t.Errorf("client → %s answered: %v, want %v", dst, got, ok)
		}
	}

	// The site's lan zone allows dns and ssh, not ping.
	want("198.51.100.1", false)
	// Changing the zone's policy opens ping on every alias of the box.
	reload(`allow = ["dns", "ssh"]`, `allow = ["dns", "ssh", "ping"]`)
	want("198.51.100.1", true)
	want("198.51.100.3", true)

	// A new alias on a new subnet gets a closed zone of its own: plan says
	// so, and a host on that subnet reaches nothing of the box.
	text, _ := os.ReadFile(g.conf)
	edited := strings.Replace(string(text), "[router]", "[[alias]]\nname = \"iot\"\naddress = \"192.0.2.1/24\"\n\n[router]", 1)
	g.write(edited)
	out, err := g.cli("plan")
	if err != nil || !strings.Contains(out, "ip addr add 192.0.2.1/24 dev eth1 label eth1:4") || !strings.Contains(out, "zone auto-iot (192.0.2.0/24) is implicit") {
		t.Fatalf("plan of a new alias outside every zone: %v\n%s", err, out)
	}
	if out, err := g.cli("reload"); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	from = iot
	want("192.0.2.1", false)

	// Moving that subnet into the lan zone opens it like the rest of lan.
	reload(`subnets = ["198.51.100.0/24"]`, `subnets = ["198.51.100.0/24", "192.0.2.0/24"]`)
	want("192.0.2.1", true)
	if st, err := g.cli("status", "--json"); err != nil || strings.Contains(st, "auto-iot") {
		t.Errorf("the implicit zone is still there (%v)", err)
	}
}
