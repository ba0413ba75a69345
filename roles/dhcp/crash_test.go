package dhcp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// The benchmark's and the crash test's network, 10.0.0.0/12: large enough
// for a pool of a million addresses, so perfdhcp's 400,000 fresh clients
// never exhaust it.
const (
	perfPrimary = "10.0.0.250/12" // gw's own address on eth1
	perfRouter  = "10.0.0.1"      // the router alias
	perfAlias   = "10.0.0.2"      // the DHCP alias
	perfRelay   = "10.0.0.70"     // perfdhcp, a relay (giaddr)
	perfSubnet  = "10.0.0.0/12"
	perfFirst   = "10.0.1.0" // the pool
	perfLast    = "10.15.255.250"
)

// perfNet is the benchmark topology: namespace gw (eth1, perfPrimary,
// aliases perfRouter and perfAlias) and namespace perf (perfRelay) on a
// switch.
type perfNet struct {
	lab      *lab.Lab
	gw, perf *lab.Namespace
	rcvbuf   string    // a library perfdhcp is preloaded with (benchpeers_test.go); "": none
	share    *cpuShare // the group servers run in (benchshare_test.go); nil: a whole core
}

func newPerfNet(t testing.TB, l *lab.Lab) *perfNet {
	t.Helper()
	sw, err := l.Switch("sw")
	if err != nil {
		t.Fatal(err)
	}
	n := &perfNet{lab: l}
	for _, name := range []string{"gw", "perf"} {
		ns, err := l.Namespace(name)
		if err != nil {
			t.Fatal(err)
		}
		ifname := map[string]string{"gw": "eth1", "perf": "eth0"}[name]
		if _, err := l.Plug(sw, ns, ifname); err != nil {
			t.Fatal(err)
		}
		if name == "gw" {
			n.gw = ns
		} else {
			n.perf = ns
		}
	}
	n.gw.MustRun(t, "ip", "addr", "add", perfPrimary, "dev", "eth1")
	n.gw.MustRun(t, "ip", "addr", "add", perfRouter+"/12", "dev", "eth1", "label", "eth1:0")
	n.gw.MustRun(t, "ip", "addr", "add", perfAlias+"/12", "dev", "eth1", "label", "eth1:1")
	n.perf.MustRun(t, "ip", "addr", "add", perfRelay+"/12", "dev", "eth0")
	return n
}

// ackedLeases reads perfdhcp's "-x l" listing of the leases it got an ACK
// for: client id (01 + MAC) → address.
func ackedLeases(out string) (map[string]string, error) {
	_, list, ok := strings.Cut(out, "***Leases for REQUEST-ACK***")
	if !ok {
		return nil, fmt.Errorf("perfdhcp printed no REQUEST-ACK leases")
	}
	acked := map[string]string{}
	for _, line := range strings.Split(list, "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 2 || !strings.HasPrefix(f[0], "01") || len(f[0]) != 14 {
			continue
		}
		mac, err := parseColonHex(f[0][2:])
		if err != nil {
			return nil, err
		}
		acked[colonHex(string(mac))] = f[1]
	}
	return acked, nil
}

// TestCrashKeepsAckedLeases kills the server with SIGKILL while perfdhcp
// loads it, and checks that every lease perfdhcp received an ACK for is in
// the lease log the next server opens.
func TestCrashKeepsAckedLeases(t *testing.T) {
	crashKeepsAcked(t, nil)
}

// TestCrashDuringCompaction is TestCrashKeepsAckedLeases with a log that
// compacts every few records: compactions run between the batches of
// ACKs, and the kill may come during one; every ACKed lease is still in
// the log the next server opens.
func TestCrashDuringCompaction(t *testing.T) {
	state := crashKeepsAcked(t, []string{compactEnv + "=10"})
	b, err := os.ReadFile(filepath.Join(state, compactionsFile))
	if err != nil {
		t.Fatalf("the child counted no compaction: %v", err)
	}
	if n, err := strconv.Atoi(string(b)); err != nil || n < 3 {
		t.Fatalf("the log compacted %q times before the kill, want several; the test proves nothing", b)
	} else {
		t.Logf("the log compacted %d times before the kill", n)
	}
}

// crashKeepsAcked runs the crash test with env added to the child's
// environment; it returns the state directory.
func crashKeepsAcked(t *testing.T, env []string) string {
	lab.RequireTools(t, "perfdhcp")
	l := lab.New(t)
	n := newPerfNet(t, l)
	state := t.TempDir()
	child := startChildWith(t, n.gw, benchConfig(), state, []string{os.Args[0], "-test.run=^$"}, env)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// -R: a new client per exchange; -p: run 4 s; the server dies at ~1.5 s.
	perf := n.perf.Command(ctx, "perfdhcp", "-4", "-r", "400", "-R", "1000000", "-p", "4", "-l", perfRelay, "-x", "l", perfAlias)
	done := make(chan struct{})
	var out []byte
	var perfErr error
	go func() {
		out, perfErr = lab.CombinedOutput(perf)
		close(done)
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	<-done
	if perfErr != nil && !strings.Contains(string(out), "Leases for REQUEST-ACK") {
		t.Fatalf("perfdhcp: %v\n%s", perfErr, out)
	}
	acked, err := ackedLeases(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(acked) < 100 {
		t.Fatalf("perfdhcp got only %d ACKs before the kill; the test proves nothing:\n%s", len(acked), out)
	}

	srv, err := New(Options{StateDir: state, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	have := map[netip.Addr]Lease{}
	for _, l := range srv.Leases() {
		have[l.Address] = l
	}
	lost := 0
	for mac, addr := range acked {
		l, ok := have[netip.MustParseAddr(addr)]
		if !ok || l.MAC != mac || l.State != StateActive {
			lost++
			if lost < 10 {
				t.Errorf("ACKed lease %s for %s is not in the log (%+v)", addr, mac, l)
			}
		}
	}
	t.Logf("perfdhcp got %d ACKs before SIGKILL; the log holds %d leases, %d lost; store: %+v", len(acked), len(have), lost, srv.Status().Store)
	return state
}
