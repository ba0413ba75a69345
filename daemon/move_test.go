package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// siteFile is one site on two boxes. Only [gateway] differs per box (its name
// and where it keeps its files); %[3]s and %[4]s are the hosts of the dhcp
// and dns aliases.
const siteFile = `
[gateway]
interface = "eth1"
host = "%[1]s"
state_dir = "%[2]s/state"
control_socket = "%[2]s/run/control.sock"
probe_timeout = "300ms"
announce_count = 2
announce_interval = "300ms"

[[alias]]
name = "router"
address = "192.0.2.1/24"
host = "gw1"

[[alias]]
name = "dhcp"
address = "192.0.2.2/24"
host = "%[3]s"

[[alias]]
name = "dns"
address = "192.0.2.3/24"
host = "%[4]s"

[router]
alias = "router"

[dhcp]
alias = "dhcp"
lease_time = "1h"

[[dhcp.pool]]
range = "192.0.2.100-192.0.2.199"
router = "router"
dns = ["dns"]

[dns]
alias = "dns"

[[dns.host]]
name = "nas"
address = "192.0.2.20"

[zone.lan]
subnets = ["192.0.2.0/24"]
allow = ["dhcp", "dns", "ping"]
forward = ["lan"]
`

type twoBoxes struct {
	t        testing.TB
	gw1, gw2 *gateway
	client   *lab.Namespace
	script   string
	events   string
}

func newTwoBoxes(t testing.TB) *twoBoxes {
	lab.Require(t)
	lab.RequireTools(t, "udhcpc", "dig")
	l := lab.New(t)
	sw, err := l.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	s := &twoBoxes{t: t, gw1: plugGateway(t, l, sw, "gw1", "192.0.2.251/24"), gw2: plugGateway(t, l, sw, "gw2", "192.0.2.252/24")}
	if s.client, err = l.Namespace("client"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Plug(sw, s.client, "eth0"); err != nil {
		t.Fatal(err)
	}
	s.place("gw1", "gw1")
	dir := t.TempDir()
	s.events = filepath.Join(dir, "events")
	s.script = filepath.Join(dir, "hook.sh")
	hook := `#!/bin/sh
echo "$1 $ip $serverid" >> ` + s.events + `
case "$1" in
bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;;
esac
`
	if err := os.WriteFile(s.script, []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// place writes the site file on both boxes with the dhcp and dns aliases on
// the named hosts.
func (s *twoBoxes) place(dhcpHost, dnsHost string) {
	for _, g := range []*gateway{s.gw1, s.gw2} {
		s.placeOn(g, dhcpHost, dnsHost)
	}
}

func (s *twoBoxes) placeOn(g *gateway, dhcpHost, dnsHost string) {
	g.write(fmt.Sprintf(siteFile, strings.TrimPrefix(g.ns.Name[strings.LastIndex(g.ns.Name, "-")+1:], ""), g.dir, dhcpHost, dnsHost))
}

func (s *twoBoxes) dig(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := s.client.Run(ctx, "dig", "@192.0.2.3", "+short", "+time=1", "+tries=1", name)
	out = strings.TrimSpace(out)
	if err == nil && out == "" {
		err = fmt.Errorf("no answer for %s", name)
	}
	return out, err
}

// lastEvent returns the client's last hook event ("bound 192.0.2.100 192.0.2.2").
func (s *twoBoxes) lastEvent() string {
	b, _ := os.ReadFile(s.events)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func (s *twoBoxes) neighMAC(ip string) string {
	out := s.client.MustRun(s.t, "ip", "neigh", "show", ip, "dev", "eth0")
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// TestMoveRoles moves the DNS role and then the DHCP role from gw1 to gw2 by
// editing `host` and reloading both boxes, with a client on the same wire.
func TestMoveRoles(t *testing.T) {
	s := newTwoBoxes(t)
	s.gw1.start()
	s.gw2.start()
	gw1MAC, _ := s.gw1.ns.MAC("eth1")
	gw2MAC, _ := s.gw2.ns.MAC("eth1")

	// The client gets a lease from gw1 and keeps its DHCP client running.
	udhcpc, err := s.client.Start(context.Background(), "udhcpc", "-f", "-i", "eth0", "-s", s.script, "-t", "5", "-T", "1")
	if err != nil {
		t.Fatal(err)
	}
	var leased string
	lab.Eventually(t, 10*time.Second, func() error {
		if f := strings.Fields(s.lastEvent()); len(f) == 3 && f[0] == "bound" {
			leased = f[1]
			return nil
		}
		return fmt.Errorf("no lease yet")
	})
	if out, err := s.dig("nas.home.arpa"); err != nil || out != "192.0.2.20" {
		t.Fatalf("dig nas.home.arpa from the client: %q %v", out, err)
	}

	// Claiming the DNS address while gw1 still holds it is refused, naming
	// the address and gw1's MAC, and changes nothing on gw2.
	before := s.gw2.addrs()
	s.placeOn(s.gw2, "gw1", "gw2")
	out, err := s.gw2.cli("reload")
	if err == nil || !strings.Contains(out, "192.0.2.3") || !strings.Contains(out, gw1MAC.String()) || !strings.Contains(out, "release it on its old host first") {
		t.Fatalf("claim of a held address: err=%v\n%s", err, out)
	}
	if after := s.gw2.addrs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused claim changed gw2: %v → %v", before, after)
	}

	// Move DNS while the client keeps asking: no query goes unanswered for
	// longer than one retry.
	var mu sync.Mutex
	var failures, worst int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		run := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := s.dig("nas.home.arpa")
			mu.Lock()
			if err != nil {
				failures++
				run++
				worst = max(worst, run)
			} else {
				run = 0
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)
	// gw2 asks first and waits (reload --wait) until gw1 has released.
	s.place("gw1", "gw2")
	claimed := make(chan error, 1)
	go func() {
		out, err := s.gw2.cli("reload", "--wait", "20s")
		if err == nil && !strings.Contains(out, "waiting for the old host") {
			err = fmt.Errorf("reload --wait did not wait:\n%s", out)
		}
		claimed <- err
	}()
	time.Sleep(time.Second)
	if out, err := s.gw1.cli("reload"); err != nil {
		t.Fatalf("gw1 releasing dns: %v\n%s", err, out)
	}
	if err := <-claimed; err != nil {
		t.Fatalf("gw2 claiming dns: %v", err)
	}
	if mac := s.neighMAC("192.0.2.3"); mac != gw2MAC.String() {
		t.Errorf("right after the claim the client's ARP entry for 192.0.2.3 is %q, want gw2's %s", mac, gw2MAC)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if worst > 1 {
		t.Errorf("during the DNS move %d queries failed, %d in a row; want at most one retry", failures, worst)
	}
	if out, err := s.dig("nas.home.arpa"); err != nil || out != "192.0.2.20" {
		t.Fatalf("dig after the move: %q %v", out, err)
	}
	if st, _ := s.gw2.cli("status", "--json"); !strings.Contains(st, `"NOERROR"`) {
		t.Errorf("gw2 answered no query:\n%s", st)
	}
	if _, ok := s.gw1.addrs()["192.0.2.3/24"]; ok {
		t.Error("gw1 still holds 192.0.2.3 after releasing it")
	}

	// Move DHCP with its leases: export on gw1, import on gw2. The client's
	// renewal (unicast to 192.0.2.2, now gw2) keeps its address.
	export := filepath.Join(s.gw1.dir, "leases.json")
	if out, err := s.gw1.cli("leases", "export", export); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	s.place("gw2", "gw2")
	if out, err := s.gw1.cli("reload"); err != nil {
		t.Fatalf("gw1 releasing dhcp: %v\n%s", err, out)
	}
	if out, err := s.gw2.cli("leases", "import", export); err != nil || !strings.Contains(out, "imported 1 ") {
		t.Fatalf("import on gw2: %v\n%s", err, out)
	}
	if out, err := s.gw2.cli("reload"); err != nil {
		t.Fatalf("gw2 claiming dhcp: %v\n%s", err, out)
	}
	s.renew(udhcpc.Process.Pid, leased, "192.0.2.2")
	if out, _ := s.gw2.cli("leases"); !strings.Contains(out, leased) {
		t.Errorf("gw2's leases lack %s:\n%s", leased, out)
	}

	// Move DHCP back to gw1 without the lease file (gw1's store is wiped):
	// gw1 accepts the renewal of a free address in its pool.
	s.gw1.stop()
	// With the daemon stopped, leases are read from the store directly.
	if out, err := s.gw1.cli("leases"); err != nil || !strings.Contains(out, leased) {
		t.Errorf("offline leases on gw1: %v\n%s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(s.gw1.dir, "state", "dhcp")); err != nil {
		t.Fatal(err)
	}
	s.place("gw1", "gw2")
	if out, err := s.gw2.cli("reload"); err != nil {
		t.Fatalf("gw2 releasing dhcp: %v\n%s", err, out)
	}
	s.gw1.start()
	s.renew(udhcpc.Process.Pid, leased, "192.0.2.2")
	if out, _ := s.gw1.cli("leases"); !strings.Contains(out, leased) {
		t.Errorf("gw1's leases lack %s after the renewal:\n%s", leased, out)
	}
}

// renew makes the running udhcpc renew (SIGUSR1) and checks it kept addr.
func (s *twoBoxes) renew(pid int, addr, server string) {
	s.t.Helper()
	n := strings.Count(mustRead(s.events), "\n")
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		s.t.Fatal(err)
	}
	lab.Eventually(s.t, 10*time.Second, func() error {
		if strings.Count(mustRead(s.events), "\n") <= n {
			return fmt.Errorf("no event after SIGUSR1")
		}
		return nil
	})
	if ev := s.lastEvent(); ev != "renew "+addr+" "+server && ev != "bound "+addr+" "+server {
		s.t.Fatalf("after the move the client's renewal gave %q, want %s from %s", ev, addr, server)
	}
}

func mustRead(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
