package dhcp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatewayd/lab"
)

// testNet is a switch with the gateway namespace on it (eth1 with the
// primary address 192.0.2.250 and the three aliases) and a Server serving.
type testNet struct {
	t     *testing.T
	lab   *lab.Lab
	sw    *lab.Switch
	gw    *lab.Namespace
	dir   string
	cfg   *Config
	srv   *Server
	names *recNames
	sink  Names // when set, the Names the server gets instead of names
	logs  *syncBuffer
	rec   *records // the same log as records
	// sweepEvery, when set, is the server's sweep interval.
	sweepEvery time.Duration
}

// syncBuffer collects the server's log; it is printed when the test fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recNames records what the server publishes.
type recNames struct {
	mu   sync.Mutex
	live map[string]netip.Addr
}

func (r *recNames) PublishLease(host string, addr netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[host] = addr
}

func (r *recNames) WithdrawLease(host string, addr netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live[host] == addr {
		delete(r.live, host)
	}
}

func (r *recNames) get(host string) netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[host]
}

func newTestNet(t *testing.T, tools ...string) *testNet {
	t.Helper()
	lab.RequireTools(t, tools...)
	n := &testNet{t: t, lab: lab.New(t), dir: t.TempDir(), names: &recNames{live: map[string]netip.Addr{}}, logs: &syncBuffer{}, rec: &records{}}
	var err error
	if n.sw, err = n.lab.Switch("sw"); err != nil {
		t.Fatal(err)
	}
	if n.gw, err = n.lab.Namespace("gw"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.lab.Plug(n.sw, n.gw, "eth1"); err != nil {
		t.Fatal(err)
	}
	n.gw.MustRun(t, "ip", "addr", "add", "192.0.2.250/24", "dev", "eth1")
	for i, a := range []string{"192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24"} {
		n.gw.MustRun(t, "ip", "addr", "add", a, "dev", "eth1", "label", fmt.Sprintf("eth1:%d", i))
	}
	n.cfg = netConfig()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", n.logs.String())
		}
	})
	n.start()
	return n
}

// start makes a Server on the state directory and serves n.cfg.
func (n *testNet) start() {
	n.t.Helper()
	var names Names = n.names
	if n.sink != nil {
		names = n.sink
	}
	text := slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	srv, err := New(Options{StateDir: n.dir, Logger: slog.New(tee{text, n.rec}), Names: names})
	if err != nil {
		n.t.Fatal(err)
	}
	if n.sweepEvery != 0 {
		srv.sweepEvery = n.sweepEvery
	}
	n.srv = srv
	n.t.Cleanup(func() { srv.Close() })
	n.set(n.cfg)
}

// set applies a config inside the gateway namespace.
func (n *testNet) set(c *Config) {
	n.t.Helper()
	if err := n.gw.Do(func() error { return n.srv.Set(context.Background(), c) }); err != nil {
		n.t.Fatal(err)
	}
}

// restart closes the Server and starts a new one on the same state.
func (n *testNet) restart() {
	n.t.Helper()
	if err := n.srv.Close(); err != nil {
		n.t.Fatal(err)
	}
	n.start()
}

// client makes namespace name plugged into the switch as eth0 with the MAC.
func (n *testNet) client(name, mac string) *lab.Namespace {
	n.t.Helper()
	ns, err := n.lab.Namespace(name)
	if err != nil {
		n.t.Fatal(err)
	}
	if _, err := n.lab.Plug(n.sw, ns, "eth0"); err != nil {
		n.t.Fatal(err)
	}
	if mac != "" {
		ns.MustRun(n.t, "ip", "link", "set", "eth0", "address", mac)
	}
	return ns
}

// lease returns the server's lease of addr.
func (n *testNet) lease(addr string) (Lease, bool) {
	for _, l := range n.srv.Leases() {
		if l.Address.String() == addr {
			return l, true
		}
	}
	return Lease{}, false
}

// clientScript writes a hook script that configures the address the way
// the client's own script would, and appends its environment to envFile.
func clientScript(t *testing.T, dir, envFile string) string {
	t.Helper()
	script := filepath.Join(dir, "hook.sh")
	body := `#!/bin/sh
{ echo "==== $1 $reason"; env | sort; echo "hook_done=1"; } >> ` + envFile + `
case "$1$reason" in
bound|renew|BOUND|RENEW|REBOOT|REBIND)
	ip=${ip:-$new_ip_address}
	[ -n "$ip" ] && ip addr replace "$ip/24" dev ${interface:-eth0} ;;
deconfig|RELEASE|EXPIRE|STOP)
	ip addr flush dev ${interface:-eth0} ;;
esac
exit 0
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// envOf returns the variables of the last hook call whose header has one of
// the reasons ("BOUND|REBOOT"), failing the test when there is none.
func envOf(t *testing.T, envFile, reasons string) map[string]string {
	t.Helper()
	env, err := readEnv(envFile, reasons)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// readEnv is envOf that returns an error. A block counts only once the hook
// has finished writing it (its last line is hook_done=1).
func readEnv(envFile, reasons string) (map[string]string, error) {
	b, err := os.ReadFile(envFile)
	if err != nil {
		return nil, fmt.Errorf("client hook never ran: %w", err)
	}
	blocks := strings.Split(string(b), "==== ")
	for i := len(blocks) - 1; i >= 0; i-- {
		lines := strings.Split(blocks[i], "\n")
		match := false
		for _, reason := range strings.Split(reasons, "|") {
			match = match || strings.Contains(" "+lines[0]+" ", " "+reason+" ")
		}
		if !match {
			continue
		}
		env := map[string]string{}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, "="); ok {
				env[k] = v
			}
		}
		if env["hook_done"] != "1" {
			return nil, fmt.Errorf("the hook is still writing its %s block", reasons)
		}
		return env, nil
	}
	return nil, fmt.Errorf("no hook call with reason %s in:\n%s", reasons, b)
}

// capture runs tcpdump on the namespace's eth0, with the extra flags, until
// stop is called, which returns the lines it printed.
func capture(t *testing.T, l *lab.Lab, ns *lab.Namespace, flags ...string) (stop func() string) {
	t.Helper()
	argv := append(append([]string{"tcpdump", "-i", "eth0", "-n", "-l", "-p"}, flags...), "udp port 67 or udp port 68")
	cmd, err := ns.Start(context.Background(), argv...)
	if err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(l.Output(cmd), "listening on") {
			return fmt.Errorf("tcpdump not ready")
		}
		return nil
	})
	return func() string {
		time.Sleep(200 * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		return l.Output(cmd)
	}
}

// checkReplySources fails unless every DHCP reply tcpdump saw came from the
// DHCP alias.
func checkReplySources(t *testing.T, dump string) {
	t.Helper()
	replies := 0
	for _, line := range strings.Split(dump, "\n") {
		if !strings.Contains(line, "Reply") {
			continue
		}
		replies++
		if !strings.Contains(line, " IP 192.0.2.2.67 > ") {
			t.Errorf("a reply not from the DHCP alias 192.0.2.2: %s", line)
		}
	}
	if replies == 0 {
		t.Errorf("tcpdump saw no reply:\n%s", dump)
	}
}

func inPool(addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && span("192.0.2.100", "192.0.2.199").Contains(a)
}
