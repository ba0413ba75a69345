package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stopGrace is how long a started process has to exit after SIGTERM before
// its process group gets SIGKILL.
const stopGrace = 2 * time.Second

// process is one command Start()ed in a lab namespace.
type process struct {
	cmd  *exec.Cmd
	ns   string
	argv string
	out  *tail // nil when the caller set the command's I/O
}

// Output returns what cmd, started by Start, has written so far (the last
// 256 KiB of stdout and stderr together).
func (l *Lab) Output(cmd *exec.Cmd) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.cmd == cmd && p.out != nil {
			return p.out.String()
		}
	}
	return ""
}

// stopAll sends SIGTERM to every process group, gives them stopGrace to
// exit, then sends SIGKILL to every group (children of a leader that
// exited may linger). It waits without reaping, so callers can still Wait.
func stopAll(procs []*process) []error {
	for _, p := range procs {
		_ = killGroup(p.cmd.Process.Pid, syscall.SIGTERM)
	}
	waitExit(procs, time.Now().Add(stopGrace))
	for _, p := range procs {
		_ = killGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	}
	var errs []error
	for _, p := range waitExit(procs, time.Now().Add(stopGrace)) {
		errs = append(errs, fmt.Errorf("stopping %q (pid %d) in %s: still running after SIGKILL", p.argv, p.cmd.Process.Pid, p.ns))
	}
	return errs
}

// waitExit polls until every process has exited or deadline passes, and
// returns those still running. WNOWAIT leaves exited ones to their Wait;
// ECHILD means the caller already reaped it.
func waitExit(procs []*process, deadline time.Time) []*process {
	for {
		var running []*process
		for _, p := range procs {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PID, p.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
			if errors.Is(err, unix.ECHILD) || err == nil && info.Signo != 0 {
				continue
			}
			running = append(running, p)
		}
		if len(running) == 0 || time.Now().After(deadline) {
			return running
		}
		procs = running
		time.Sleep(10 * time.Millisecond)
	}
}

// killGroup signals process group pgid; a group that is gone is not an error.
func killGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling process group %d: %w", pgid, err)
	}
	return nil
}

// killAll sends SIGKILL to every process whose network namespace is n,
// except this one (a thread of ours may be inside n through Do), and waits
// briefly for them to go. It finds daemons that forked away from Start and
// processes nobody tracked.
func (n *Namespace) killAll() error {
	pids, err := n.pids()
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("killing pid %d in %s: %w", pid, n.Name, err))
		}
	}
	deadline := time.Now().Add(stopGrace)
	for len(pids) > 0 && time.Now().Before(deadline) {
		if pids, err = n.pids(); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.Join(errs...)
}

// pids lists the processes (other than this one) whose network namespace
// is n, the way `ip netns pids` does. Zombies have no namespace left and
// are not listed.
func (n *Namespace) pids() ([]int, error) {
	want, err := os.Stat(n.Path())
	if err != nil {
		return nil, fmt.Errorf("listing processes in %s: %w", n.Name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes in %s: %w", n.Name, err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		got, err := os.Stat("/proc/" + e.Name() + "/ns/net")
		if err == nil && os.SameFile(want, got) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// tail is an io.Writer keeping the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
