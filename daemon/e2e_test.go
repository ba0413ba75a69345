package daemon_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// bin is the gatewayd binary built once for these tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatewayd-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "gatewayd")
	out, err := exec.Command("go", "build", "-o", bin, "gatewayd/cmd/gatewayd").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building gatewayd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// site is a test config on documentation addresses; %[1]s is the state dir.
const site = `
[gateway]
interface = "eth1"
host = "gw1"
state_dir = "%[1]s/state"
control_socket = "%[1]s/run/control.sock"
probe_timeout = "100ms"
log_level = "debug"

[[alias]]
name = "router"
address = "198.51.100.1/24"

[[alias]]
name = "dhcp"
address = "198.51.100.2/24"

[[alias]]
name = "dns"
address = "198.51.100.3/24"

[[alias]]
name = "lab"
address = "203.0.113.1/24"

[router]
alias = "router"
upstream = "198.51.100.254"

[dns]
alias = "dns"
upstreams = ["198.51.100.254"]

[zone.lan]
subnets = ["198.51.100.0/24"]
allow = ["dns", "ssh"]
forward = ["upstream", "lab"]

[zone.lab]
subnets = ["203.0.113.0/24"]
allow = ["dns"]
forward = ["upstream"]
`

// gateway is a lab namespace with eth1 on a switch, a primary address and an
// address added by hand, and a directory for the daemon's files.
type gateway struct {
	t    testing.TB
	lab  *lab.Lab
	sw   *lab.Switch
	ns   *lab.Namespace
	dir  string
	conf string
	cmd  *exec.Cmd
}

func newGateway(t *testing.T) *gateway {
	lab.Require(t)
	l := lab.New(t)
	sw, err := l.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	g := plugGateway(t, l, sw, "gw", "198.51.100.250/24")
	g.ns.MustRun(t, "ip", "addr", "add", "198.51.100.77/24", "dev", "eth1", "label", "eth1:hand")
	g.write(fmt.Sprintf(site, g.dir))
	return g
}

// plugGateway makes namespace name with eth1 on the switch and its primary
// address, and a directory for the daemon's files.
func plugGateway(t testing.TB, l *lab.Lab, sw *lab.Switch, name, primary string) *gateway {
	t.Helper()
	ns, err := l.Namespace(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Plug(sw, ns, "eth1"); err != nil {
		t.Fatal(err)
	}
	ns.MustRun(t, "ip", "addr", "add", primary, "dev", "eth1")
	dir := t.TempDir()
	return &gateway{t: t, lab: l, sw: sw, ns: ns, dir: dir, conf: filepath.Join(dir, "gateway.toml")}
}

func (g *gateway) write(text string) {
	g.t.Helper()
	if err := os.WriteFile(g.conf, []byte(text), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// start runs the daemon and waits until it answers status.
func (g *gateway) start() {
	g.t.Helper()
	g.startUnder()
}

// startUnder is start with the daemon run by a wrapper (setpriv ... --).
func (g *gateway) startUnder(wrapper ...string) {
	g.t.Helper()
	cmd, err := g.ns.Start(context.Background(), append(wrapper, bin, "run", "--config", g.conf)...)
	if err != nil {
		g.t.Fatal(err)
	}
	g.cmd = cmd
	lab.Eventually(g.t, 10*time.Second, func() error {
		_, err := g.cli("status")
		return err
	})
}

// stop sends SIGTERM and waits for the daemon to exit.
func (g *gateway) stop() {
	g.t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		g.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		g.t.Fatal("daemon did not stop within 10s of SIGTERM")
	}
}

// cli runs a gatewayd command against the config and returns its output.
func (g *gateway) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := g.ns.Run(ctx, append([]string{bin}, append(args, "--config", g.conf)...)...)
	return withoutWarnings(out), err
}

// withoutWarnings drops the config's warnings (file:line:col: warning: ...)
// from a command's output: the test sites put the upstream router on the
// alias wire, which check and reload warn about.
func withoutWarnings(out string) string {
	var keep []string
	for _, line := range strings.SplitAfter(out, "\n") {
		if !strings.Contains(line, ": warning: ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "")
}

// addrs returns "address label" for every IPv4 address on eth1.
func (g *gateway) addrs() map[string]string {
	g.t.Helper()
	out := g.ns.MustRun(g.t, "ip", "-4", "-o", "addr", "show", "dev", "eth1")
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				m[f[i+1]] = labelOf(f)
			}
		}
	}
	return m
}

func labelOf(f []string) string {
	for i := len(f) - 1; i > 0; i-- {
		if strings.HasPrefix(f[i], "eth1") {
			return strings.TrimSuffix(f[i], "\\")
		}
	}
	return ""
}

func (g *gateway) wantAddrs(want map[string]string) {
	g.t.Helper()
	got := g.addrs()
	for a, label := range want {
		if label == "" {
			if _, ok := got[a]; ok {
				g.t.Errorf("address %s is still on eth1 (%v)", a, got)
			}
			continue
		}
		if got[a] != label {
			g.t.Errorf("address %s: label %q, want %q (all: %v)", a, got[a], label, got)
		}
	}
}

var seeded = map[string]string{
	"198.51.100.250/24": "eth1",
	"198.51.100.77/24":  "eth1:hand",
	"198.51.100.1/24":   "eth1:0",
	"198.51.100.2/24":   "eth1:1",
	"198.51.100.3/24":   "eth1:2",
	"203.0.113.1/24":    "eth1:3",
}

// noKernelWrites runs fn while `ip monitor` and `nft monitor` watch the
// gateway's namespace, and fails the test if either saw a change.
// monitorNoise is what `ip monitor` prints about other labs' namespaces
// going away while it names a peer: not a change in this one.
var monitorNoise = regexp.MustCompile(`(?m)^Error: Peer netns reference is invalid\.$`)

func (g *gateway) noKernelWrites(what string, fn func()) {
	g.t.Helper()
	// The kernel's own late events of a fresh lab (IPv6 DAD finishing, a
	// delayed carrier) are not gatewayd's writes: let them pass first.
	settle(g.t, g)
	var mons []*exec.Cmd
	for _, argv := range [][]string{{"ip", "-o", "monitor", "address", "route", "link"}, {"nft", "monitor"}} {
		m, err := g.ns.Start(context.Background(), argv...)
		if err != nil {
			g.t.Fatal(err)
		}
		mons = append(mons, m)
	}
	time.Sleep(200 * time.Millisecond)
	fn()
	time.Sleep(300 * time.Millisecond)
	for _, m := range mons {
		m.Process.Kill()
		m.Wait()
		if seen := monitorNoise.ReplaceAllString(strings.TrimSpace(g.lab.Output(m)), ""); strings.TrimSpace(seen) != "" {
			g.t.Errorf("%s changed the kernel (%s):\n%s", what, m.Args[len(m.Args)-1], seen)
		}
	}
}
