package aliases

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// rig is the kernel tests' topology: the gateway (eth1, primary address
// 192.168.1.10/24) and a neighbour (eth0, 192.168.1.50/24) on one switch.
type rig struct {
	l     *lab.Lab
	sw    *lab.Switch
	gw    *lab.Namespace
	nb    *lab.Namespace
	gwMAC net.HardwareAddr
	nbMAC net.HardwareAddr
	dir   string // the gateway's state dir
}

const (
	primary   = "192.168.1.10/24"
	neighbour = "192.168.1.50/24"
)

var (
	router = Alias{Name: "router", Prefix: netip.MustParsePrefix("192.168.1.1/24"), Label: "eth1:0"}
	dhcp   = Alias{Name: "dhcp", Prefix: netip.MustParsePrefix("192.168.1.2/24"), Label: "eth1:1"}
	dns    = Alias{Name: "dns", Prefix: netip.MustParsePrefix("192.168.1.3/24"), Label: "eth1:2"}
	labnet = Alias{Name: "lab", Prefix: netip.MustParsePrefix("10.0.0.1/24"), Label: "eth1:3"}
)

func newRig(t *testing.T) *rig {
	t.Helper()
	lab.Require(t)
	r := &rig{l: lab.New(t), dir: t.TempDir()}
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	r.sw, err = r.l.Switch("lan")
	must(err)
	r.gw, err = r.l.Namespace("gw")
	must(err)
	r.nb, err = r.l.Namespace("nb")
	must(err)
	r.gwMAC, err = r.l.Plug(r.sw, r.gw, "eth1")
	must(err)
	r.nbMAC, err = r.l.Plug(r.sw, r.nb, "eth0")
	must(err)
	must(r.gw.Addr("eth1", primary))
	must(r.nb.Addr("eth0", neighbour))
	return r
}

// open opens the gateway's NIC from inside its namespace, as the daemon
// would, with a fast announcement burst; Close runs at cleanup.
func (r *rig) open(t *testing.T) *NIC {
	t.Helper()
	n, err := r.tryOpen(t, Options{Interface: "eth1", StateDir: r.dir})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (r *rig) tryOpen(t *testing.T, opts Options) (*NIC, error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = lab.Logger(t)
	}
	if opts.Announce.Interval == 0 {
		opts.Announce.Interval = 50 * time.Millisecond
	}
	var n *NIC
	err := r.gw.Do(func() error {
		var err error
		n, err = Open(opts)
		return err
	})
	if err == nil {
		t.Cleanup(func() { n.Close() })
	}
	return n, err
}

// addrs is `ip -4 -o addr show dev eth1` in the gateway: prefix -> label.
func (r *rig) addrs(t *testing.T) map[string]string {
	t.Helper()
	return ipAddrs(t, r.gw.MustRun(t, "ip", "-4", "-o", "addr", "show", "dev", "eth1"))
}

// ipAddrs parses `ip -4 -o addr show` lines such as
// "2: eth1    inet 192.168.1.1/24 brd 192.168.1.255 scope global secondary eth1:0\       valid_lft ...".
func ipAddrs(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for line := range strings.Lines(out) {
		line, _, _ = strings.Cut(line, `\`)
		f := strings.Fields(line)
		for i := range f {
			if f[i] == "inet" && i+1 < len(f) {
				m[f[i+1]] = f[len(f)-1]
			}
		}
	}
	return m
}

// wantAddrs checks that the gateway has exactly want (prefix -> label) on eth1.
func (r *rig) wantAddrs(t *testing.T, want map[string]string) {
	t.Helper()
	if err := r.checkAddrs(t, want); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) checkAddrs(t *testing.T, want map[string]string) error {
	got := r.addrs(t)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("addresses on eth1:\n got %v\nwant %v", got, want)
	}
	return nil
}

func set(t *testing.T, n *NIC, desired ...Alias) Result {
	t.Helper()
	res, err := n.Set(context.Background(), desired)
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	return res
}

// watch runs n.Watch inside the gateway's namespace, as the daemon does in
// its own, until the test ends.
func (r *rig) watch(t *testing.T, n *NIC) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.gw.Do(func() error { return n.Watch(ctx) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
}
