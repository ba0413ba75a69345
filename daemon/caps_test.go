package daemon_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestServesWithoutSysAdmin runs the daemon with exactly the capabilities
// the unit grants (NET_ADMIN, NET_RAW, NET_BIND_SERVICE; no SYS_ADMIN: it
// never enters another network namespace) and checks that every role serves
// a real client.
func TestServesWithoutSysAdmin(t *testing.T) {
	lab.RequireTools(t, "setpriv")
	s := newTwoBoxes(t)
	s.gw1.startUnder("setpriv", "--bounding-set=-all,+net_admin,+net_raw,+net_bind_service", "--inh-caps=-all", "--")

	// NET_BIND_SERVICE is bit 10, NET_ADMIN 12, NET_RAW 13.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.gw1.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var eff uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if want := uint64(1<<10 | 1<<12 | 1<<13); eff != want {
		t.Fatalf("the daemon runs with capabilities %#x, want exactly %#x", eff, want)
	}

	udhcpc, err := s.client.Start(context.Background(), "udhcpc", "-f", "-i", "eth0", "-s", s.script, "-t", "5", "-T", "1")
	if err != nil {
		t.Fatal(err)
	}
	defer udhcpc.Process.Kill()
	lab.Eventually(t, 10*time.Second, func() error {
		if f := strings.Fields(s.lastEvent()); len(f) == 3 && f[0] == "bound" {
			return nil
		}
		return fmt.Errorf("no lease yet")
	})
	if out, err := s.dig("nas.home.arpa"); err != nil || out != "192.0.2.20" {
		t.Fatalf("dig nas.home.arpa from the client: %q %v", out, err)
	}
	if out, err := s.gw1.cli("reload"); err != nil || strings.TrimSpace(out) != "no changes" {
		t.Errorf("reload without SYS_ADMIN: %q %v", out, err)
	}
}
