package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Namespace is a named network namespace ("ip netns" name in Name). One
// made outside a Lab can Run, Do and the rest, but cannot Start: only a
// Lab can stop what it started.
type Namespace struct {
	Name string // the full name, "<prefix>-<name>"

	lab *Lab
}

// waitDelay bounds how long Wait waits for output pipes after the command
// exits (a daemon that forked away may hold them) or after ctx ends.
const waitDelay = 2 * time.Second

// Path is the namespace's file, for setns(2) or netns.GetFromPath.
func (n *Namespace) Path() string { return filepath.Join(netnsDir, n.Name) }

// String is the namespace's name.
func (n *Namespace) String() string { return n.Name }

// Command prepares `ip netns exec <name> argv...` in a process group of
// its own. When ctx ends the whole group is killed. It is not started: set
// its I/O, then start it with StartCommand (tracked) or CombinedOutput, which
// start it from the thread that keeps its Pdeathsig from firing early.
func (n *Namespace) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", n.Name}, argv...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	// Pdeathsig: if the test binary dies, its peers die with it (spawn.go
	// starts them from a thread that lives as long as the process).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// Run runs argv inside the namespace and returns its combined output. The
// error names the command and the namespace and includes the output.
func (n *Namespace) Run(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("running in %s: no command", n.Name)
	}
	out, err := CombinedOutput(n.Command(ctx, argv...))
	if err != nil {
		return string(out), fmt.Errorf("running %q in %s: %w\n%s", strings.Join(argv, " "), n.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error, with a 60 s time limit.
func (n *Namespace) MustRun(t TB, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := n.Run(ctx, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Start starts argv inside the namespace in the background. Its combined
// output is kept (the last 256 KiB) for Lab.Output and is logged when the
// test fails. Lab.Close stops its process group if it is still running.
// The caller may Wait for it or signal it; Close never reaps it.
func (n *Namespace) Start(ctx context.Context, argv ...string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("starting in %s: no command", n.Name)
	}
	cmd := n.Command(ctx, argv...)
	out := &tail{max: 256 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := n.startTracked(cmd, out); err != nil {
		return nil, err
	}
	return cmd, nil
}

// StartCommand starts cmd, made by Command with the caller's own I/O, and
// hands it to Lab.Close to stop like Start's.
func (n *Namespace) StartCommand(cmd *exec.Cmd) error {
	return n.startTracked(cmd, nil)
}

// Do runs fn on an OS thread switched into the namespace, and returns its
// error. fn runs on a goroutine of its own: goroutines fn starts are not in
// the namespace, and fn must not call t.Fatal (return an error instead).
// Sockets fn opens stay in the namespace after Do returns. A panic in fn is
// re-raised in the caller.
func (n *Namespace) Do(fn func() error) error {
	target, err := netns.GetFromPath(n.Path())
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", n.Name, err)
	}
	defer target.Close()

	done := make(chan outcome, 1)
	go func() {
		res := outcome{}
		defer func() { done <- res }()
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res.err = fmt.Errorf("saving the thread's namespace before entering %s: %w", n.Name, err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread() // a failed setns leaves the thread where it was
			res.err = fmt.Errorf("entering namespace %s: %w", n.Name, err)
			return
		}
		call(fn, &res) // on runtime.Goexit it leaves res marked and never returns
		if err := netns.Set(orig); err != nil {
			// Keep the thread locked: when this goroutine ends, Go ends
			// the thread instead of reusing it in the wrong namespace.
			res.err = errors.Join(res.err, fmt.Errorf("leaving namespace %s: %w", n.Name, err))
			return
		}
		runtime.UnlockOSThread()
	}()
	res := <-done
	if res.panicked {
		if res.value == nil {
			return fmt.Errorf("in namespace %s: fn called runtime.Goexit (t.Fatal?); return an error instead", n.Name)
		}
		panic(res.value)
	}
	return res.err
}

// outcome is what fn did inside Do.
type outcome struct {
	err      error
	panicked bool
	value    any // the panic value; nil with panicked means runtime.Goexit
}

// call runs fn, recording its error or panic in res.
func call(fn func() error, res *outcome) {
	res.panicked = true
	defer func() {
		if res.panicked {
			res.value = recover()
		}
	}()
	res.err = fn()
	res.panicked = false
}

// Handle returns a netlink handle whose sockets live in the namespace; the
// caller closes it. It is made inside Do rather than with
// netlink.NewHandleAt, which unlocks its thread even when switching back
// fails.
func (n *Namespace) Handle() (*netlink.Handle, error) {
	var h *netlink.Handle
	err := n.Do(func() error {
		var err error
		h, err = netlink.NewHandle()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", n.Name, err)
	}
	return h, nil
}

// Addr adds address cidr (such as "192.168.1.1/24") to ifname.
func (n *Namespace) Addr(ifname, cidr string) error {
	if _, err := netip.ParsePrefix(cidr); err != nil {
		return fmt.Errorf("adding %s to %s in %s: %w", cidr, ifname, n.Name, err)
	}
	if err := runIP("-n", n.Name, "addr", "add", cidr, "dev", ifname); err != nil {
		return fmt.Errorf("adding %s to %s in %s: %w", cidr, ifname, n.Name, err)
	}
	return nil
}

// MAC returns ifname's hardware address.
func (n *Namespace) MAC(ifname string) (net.HardwareAddr, error) {
	h, err := n.Handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("reading the MAC of %s in %s: %w", ifname, n.Name, err)
	}
	return link.Attrs().HardwareAddr, nil
}

// Sysctl sets a sysctl inside the namespace only, such as
// "net.ipv4.ip_forward" or, for names holding dots,
// "net/ipv4/conf/eth1.10/forwarding". Only net.* keys are per namespace;
// others would reach the host and are refused.
func (n *Namespace) Sysctl(key, value string) error {
	rel := key
	if !strings.Contains(key, "/") {
		rel = strings.ReplaceAll(key, ".", "/")
	}
	if !strings.HasPrefix(rel, "net/") || strings.Contains(rel, "..") {
		return fmt.Errorf("sysctl %s in %s: only net.* keys belong to a namespace", key, n.Name)
	}
	path := filepath.Join("/proc/sys", rel)
	err := n.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.Name, err)
	}
	return nil
}

// startTracked starts cmd and records it with the lab so Close stops it.
func (n *Namespace) startTracked(cmd *exec.Cmd, out *tail) error {
	argv := strings.Join(commandArgv(cmd), " ")
	if n.lab == nil {
		return fmt.Errorf("starting %q in %s: the namespace belongs to no lab, so nothing would stop it", argv, n.Name)
	}
	if cmd.SysProcAttr == nil || !cmd.SysProcAttr.Setpgid {
		return fmt.Errorf("starting %q in %s: make the command with Namespace.Command so it has a process group to stop", argv, n.Name)
	}
	l := n.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("starting %q in %s: lab %s is closed", argv, n.Name, l.prefix)
	}
	if err := start(cmd); err != nil {
		return fmt.Errorf("starting %q in %s: %w", argv, n.Name, err)
	}
	l.procs = append(l.procs, &process{cmd: cmd, ns: n.Name, argv: argv, out: out})
	l.log.Debug("started", "ns", n.Name, "pid", cmd.Process.Pid, "cmd", argv)
	return nil
}

// commandArgv is what cmd runs, without the "ip netns exec <name>" Command adds.
func commandArgv(cmd *exec.Cmd) []string {
	if len(cmd.Args) >= 4 && cmd.Args[1] == "netns" && cmd.Args[2] == "exec" {
		return cmd.Args[4:]
	}
	return cmd.Args
}

// runIP runs the ip command with a time limit.
func runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
