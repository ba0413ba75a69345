package daemon_test

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

// nicSite is the two-box site with a default route, for the NIC faults.
func nicSite(s *twoBoxes) string {
	site := fmt.Sprintf(siteFile, "gw1", s.gw1.dir, "gw1", "gw1")
	return strings.Replace(site, "[router]\nalias = \"router\"\n", "[router]\nalias = \"router\"\nupstream = \"192.0.2.254\"\n", 1)
}

// serving checks, from the client, that every role is back: a DHCP lease
// (a fresh udhcpc run), a DNS answer, and, on the gateway, the default
// route and the nftables table.
func serving(t *testing.T, s *twoBoxes) func() error {
	script := filepath.Join(t.TempDir(), "quiet.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if out, err := s.client.Run(ctx, "udhcpc", "-f", "-q", "-n", "-t", "2", "-T", "1", "-i", "eth0", "-s", script); err != nil {
			return fmt.Errorf("no DHCP lease: %v %s", err, out)
		}
		if out, err := s.dig("nas.home.arpa"); err != nil || out != "192.0.2.20" {
			return fmt.Errorf("no DNS answer: %q %v", out, err)
		}
		if out, _ := s.gw1.ns.Run(ctx, "ip", "-4", "route", "show", "default"); !strings.Contains(out, "via 192.0.2.254") {
			return fmt.Errorf("no default route: %q", out)
		}
		if _, err := s.gw1.ns.Run(ctx, "nft", "list", "table", "inet", "gatewayd"); err != nil {
			return fmt.Errorf("no table: %w", err)
		}
		return nil
	}
}

// TestNICFaults (issue #11): the NIC goes down and up, loses its addresses,
// and is deleted and re-created with a new index; each time every role
// serves again without a reload: a DHCP lease, a DNS answer, the default
// route and the table.
func TestNICFaults(t *testing.T) {
	s := newTwoBoxes(t)
	s.client.MustRun(t, "ip", "addr", "add", "192.0.2.60/24", "dev", "eth0")
	s.gw1.write(nicSite(s))
	s.gw1.start()
	ok := serving(t, s)
	lab.Eventually(t, 10*time.Second, ok)
	for _, fault := range []struct {
		what   string
		break_ func()
	}{
		{"link down and up", func() {
			s.gw1.ns.MustRun(t, "ip", "link", "set", "eth1", "down")
			s.gw1.ns.MustRun(t, "ip", "link", "set", "eth1", "up")
		}},
		{"ip addr flush", func() { s.gw1.ns.MustRun(t, "ip", "addr", "flush", "dev", "eth1") }},
		{"the NIC deleted and re-created", func() {
			s.gw1.ns.MustRun(t, "ip", "link", "del", "eth1")
			if _, err := s.gw1.lab.Plug(s.gw1.sw, s.gw1.ns, "eth1"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		fault.break_()
		// The primary address is the admin's: put back by hand, as the
		// box's network configuration would.
		s.gw1.ns.Run(t.Context(), "ip", "addr", "add", "192.0.2.251/24", "dev", "eth1")
		lab.Eventually(t, 10*time.Second, func() error {
			if err := ok(); err != nil {
				return fmt.Errorf("after %s: %w", fault.what, err)
			}
			return nil
		})
	}
	// The DHCP role's sockets were opened again on the re-created NIC: a
	// restore of the drift loop, as the firewall's and the routes' are.
	if st := s.gw1.status(); st.Repairs["dhcp"].Restores < 1 {
		t.Errorf("the DHCP sockets' re-open is not counted: %+v", st.Repairs)
	}
}

// TestStartWithoutTheNIC (issue #11): the daemon starts although its NIC is
// not there yet, says so in status, and serves every role once it appears.
func TestStartWithoutTheNIC(t *testing.T) {
	s := newTwoBoxes(t)
	s.client.MustRun(t, "ip", "addr", "add", "192.0.2.60/24", "dev", "eth0")
	s.gw1.write(nicSite(s))
	s.gw1.ns.MustRun(t, "ip", "link", "del", "eth1")
	s.gw1.start()
	st := s.gw1.status()
	if st.NIC == nil || st.NIC.Present || st.NIC.Waiting == "" {
		t.Errorf("status with the NIC absent: %+v", st.NIC)
	}
	if _, err := s.gw1.lab.Plug(s.gw1.sw, s.gw1.ns, "eth1"); err != nil {
		t.Fatal(err)
	}
	s.gw1.ns.MustRun(t, "ip", "addr", "add", "192.0.2.251/24", "dev", "eth1")
	lab.Eventually(t, 10*time.Second, serving(t, s))
	if st := s.gw1.status(); st.NIC == nil || !st.NIC.Present || st.NIC.Waiting != "" || st.Degraded != "" {
		t.Errorf("status once the NIC is there: nic %+v, degraded %q", st.NIC, st.Degraded)
	}
}
