// Package lab builds network-namespace topologies for gatewayd's tests,
// benchmarks and `gatewayd demo`: named namespaces, veth pairs between them,
// and switches (a bridge living in a namespace of its own).
//
// lab owns only what it creates: network namespaces named "<prefix>-<name>"
// under /run/netns, the links inside them, and the processes it starts in
// them. It must never touch the host's own namespace: every veth is created
// directly inside its namespaces, no link is ever made or moved in the host
// namespace, and sysctls are written only from inside a lab namespace.
//
// Everything here needs root and the ip command (iproute2); kernel tests
// call Require first.
package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// netnsDir is where `ip netns add` bind-mounts named namespaces.
const netnsDir = "/run/netns"

// bridgeName is the bridge inside every switch namespace.
const bridgeName = "br0"

// ipTimeout bounds every ip command lab runs itself, so a wedged command
// fails a test instead of hanging it.
const ipTimeout = 30 * time.Second

// Lab is one run's set of namespaces, switches and processes. Its methods
// are safe for concurrent use.
type Lab struct {
	prefix string
	log    *slog.Logger
	t      TB // nil when made by Open

	mu     sync.Mutex
	closed bool
	spaces []*Namespace          // in creation order
	names  map[string]*Namespace // by full netns name
	procs  []*process
	ports  int // bridge ports made so far: names them uniquely per run
}

// Switch is an Ethernet switch: bridge br0 inside its own namespace.
type Switch struct {
	Name   string     // the name given to Lab.Switch
	NS     *Namespace // the namespace holding the bridge ("<prefix>-sw-<name>")
	Bridge string     // the bridge's name inside NS
}

// New opens a lab with a fresh random prefix and closes it when the test
// ends. It fails the test if the lab cannot be opened.
func New(t TB) *Lab {
	t.Helper()
	l, err := Open("")
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	l.t = t
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab: closing %s: %v", l.prefix, err)
		}
	})
	return l
}

// Open opens a lab whose namespaces are named "<prefix>-<name>". An empty
// prefix picks a fresh random one. Open refuses a prefix that already names
// namespaces (a previous run's leftovers: Sweep them first). The caller must
// Close the lab.
func Open(prefix string) (*Lab, error) {
	if prefix == "" {
		p, err := freshPrefix()
		if err != nil {
			return nil, err
		}
		prefix = p
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	left, err := listNamespaces(prefix + "-")
	if err != nil {
		return nil, err
	}
	if len(left) > 0 {
		return nil, fmt.Errorf("lab prefix %q is in use by namespaces %s: a previous run's leftovers? remove them with lab.Sweep(%q)",
			prefix, strings.Join(left, ", "), prefix+"-")
	}
	return &Lab{
		prefix: prefix,
		log:    slog.Default().With("component", "lab", "prefix", prefix),
		names:  map[string]*Namespace{},
	}, nil
}

// Prefix is the run's unique prefix; every namespace name starts with it and a dash.
func (l *Lab) Prefix() string { return l.prefix }

// Namespace creates network namespace "<prefix>-<name>" with lo up.
func (l *Lab) Namespace(name string) (*Namespace, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return l.create(l.prefix + "-" + name)
}

// Switch creates a switch: bridge br0, up, inside namespace
// "<prefix>-sw-<name>" (tcpdump it through Switch.NS). IPv6 is off in that
// namespace so the bridge and its ports send nothing of their own onto the
// wire.
func (l *Lab) Switch(name string) (*Switch, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	ns, err := l.create(l.prefix + "-sw-" + name)
	if err != nil {
		return nil, err
	}
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if err := ns.Sysctl(key, "1"); err != nil {
			return nil, fmt.Errorf("switch %s: %w", name, err)
		}
	}
	// A plain switch: no STP, so ports forward at once, and no multicast
	// snooping, so IPv6 neighbour discovery is flooded like on a dumb hub.
	if err := l.ip(ns, "link", "add", bridgeName, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"); err != nil {
		return nil, fmt.Errorf("switch %s: %w", name, err)
	}
	if err := l.ip(ns, "link", "set", bridgeName, "up"); err != nil {
		return nil, fmt.Errorf("switch %s: %w", name, err)
	}
	return &Switch{Name: name, NS: ns, Bridge: bridgeName}, nil
}

// Plug connects ns to sw: a veth pair with end ifname in ns and the other
// end a port of the bridge, both up. It returns ifname's MAC address.
func (l *Lab) Plug(sw *Switch, ns *Namespace, ifname string) (net.HardwareAddr, error) {
	if err := checkIfname(ifname); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.ports++
	port := fmt.Sprintf("p%d", l.ports)
	l.mu.Unlock()

	where := fmt.Sprintf("plugging %s:%s into switch %s", ns.Name, ifname, sw.Name)
	if err := l.veth(ns, ifname, sw.NS, port); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := l.ip(sw.NS, "link", "set", port, "master", sw.Bridge, "up"); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := l.ip(ns, "link", "set", ifname, "up"); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	mac, err := ns.MAC(ifname)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return mac, nil
}

// Link connects a and b with a veth pair, aIf in a and bIf in b, both up.
func (l *Lab) Link(a *Namespace, aIf string, b *Namespace, bIf string) error {
	for _, name := range []string{aIf, bIf} {
		if err := checkIfname(name); err != nil {
			return err
		}
	}
	where := fmt.Sprintf("linking %s:%s to %s:%s", a.Name, aIf, b.Name, bIf)
	if a.Name == b.Name && aIf == bIf {
		return fmt.Errorf("%s: both ends have the same name", where)
	}
	if err := l.veth(a, aIf, b, bIf); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := l.ip(a, "link", "set", aIf, "up"); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := l.ip(b, "link", "set", bIf, "up"); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// Close stops every process started in the lab's namespaces (those from
// Start, and any other still inside them, such as a daemon that forked
// itself away), then deletes every namespace the lab made. It joins the
// errors it meets and carries on past them. Later calls do nothing.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, spaces := l.procs, l.spaces
	l.mu.Unlock()

	var errs []error
	errs = append(errs, stopAll(procs)...)
	if l.t != nil && l.t.Failed() {
		for _, p := range procs {
			if p.out != nil {
				l.t.Logf("lab: output of %q in %s:\n%s", p.argv, p.ns, p.out.String())
			}
		}
	}
	for i := len(spaces) - 1; i >= 0; i-- {
		if err := removeNamespace(spaces[i].Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Sweep deletes every namespace whose name starts with prefix, killing the
// processes still inside it. Use it for a fixed prefix (the demo's) or a
// run's own prefix; never for a prefix other live runs share, since Sweep
// cannot tell leftovers from namespaces in use.
func Sweep(prefix string) error {
	if prefix == "" {
		return errors.New("sweeping namespaces: empty prefix would match every namespace")
	}
	names, err := listNamespaces(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := removeNamespace(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// create makes and records namespace full with lo up.
func (l *Lab) create(full string) (*Namespace, error) {
	ns := &Namespace{Name: full, lab: l}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("creating namespace %s: lab %s is closed", full, l.prefix)
	}
	if _, dup := l.names[full]; dup {
		l.mu.Unlock()
		return nil, fmt.Errorf("creating namespace %s: the lab already has it", full)
	}
	l.names[full] = ns
	l.mu.Unlock()

	if err := l.command(nil, "netns", "add", full); err != nil {
		l.mu.Lock()
		delete(l.names, full)
		l.mu.Unlock()
		return nil, fmt.Errorf("creating namespace %s: %w", full, err)
	}
	l.mu.Lock()
	l.spaces = append(l.spaces, ns)
	l.mu.Unlock()
	if err := l.ip(ns, "link", "set", "lo", "up"); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", full, err)
	}
	return ns, nil
}

// veth creates a veth pair with each end born in its own namespace, so no
// interface ever appears in the host namespace, not even for a moment.
func (l *Lab) veth(a *Namespace, aIf string, b *Namespace, bIf string) error {
	return l.ip(a, "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name)
}

// ip runs `ip -n <ns> args...`.
func (l *Lab) ip(ns *Namespace, args ...string) error {
	return l.command(ns, args...)
}

// command runs the ip command, inside ns when ns is not nil.
func (l *Lab) command(ns *Namespace, args ...string) error {
	if ns != nil {
		args = append([]string{"-n", ns.Name}, args...)
	}
	l.log.Debug("ip", "args", strings.Join(args, " "))
	return runIP(args...)
}

// removeNamespace kills what still runs inside namespace name, then deletes
// it. A namespace that is already gone is not an error.
func removeNamespace(name string) error {
	ns := &Namespace{Name: name}
	if _, err := os.Stat(ns.Path()); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	if err := ns.killAll(); err != nil {
		errs = append(errs, err)
	}
	if err := runIP("netns", "delete", name); err != nil {
		errs = append(errs, fmt.Errorf("deleting namespace %s: %w", name, err))
	}
	return errors.Join(errs...)
}

// listNamespaces returns the named namespaces starting with prefix.
func listNamespaces(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing namespaces in %s: %w", netnsDir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// freshPrefix returns "gwt" and 5 random hex digits, unused by any namespace.
func freshPrefix() (string, error) {
	for range 10 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("picking a lab prefix: %w", err)
		}
		p := "gwt" + hex.EncodeToString(b[:])[:5]
		used, err := listNamespaces(p + "-")
		if err != nil {
			return "", err
		}
		if len(used) == 0 {
			return p, nil
		}
	}
	return "", errors.New("picking a lab prefix: every candidate is in use: too many leftover gwt* namespaces (see ip netns list)")
}

// checkPrefix accepts 1 to 16 letters, digits or underscores; no dash, so
// "<prefix>-" can never be the start of another prefix's names.
func checkPrefix(p string) error {
	if len(p) > 16 || !isWord(p, "_") {
		return fmt.Errorf("lab prefix %q: want 1 to 16 letters, digits or underscores", p)
	}
	return nil
}

// checkName accepts a namespace or switch name: 1 to 64 letters, digits,
// dots, dashes or underscores.
func checkName(name string) error {
	if len(name) > 64 || !isWord(name, "._-") || name == "." || name == ".." {
		return fmt.Errorf("lab name %q: want 1 to 64 letters, digits, '.', '-' or '_'", name)
	}
	return nil
}

// checkIfname accepts what the kernel does (dev_valid_name): 1 to 15 bytes,
// no '/', ':' or white space, not "." or "..".
func checkIfname(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." ||
		strings.ContainsAny(name, "/: \t\n\r\v\f") {
		return fmt.Errorf("interface name %q: want 1 to 15 bytes without '/', ':' or spaces", name)
	}
	return nil
}

func isWord(s, extra string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)
		if !ok {
			return false
		}
	}
	return true
}
