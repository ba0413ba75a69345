package firewall

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gatewayd/lab"
)

// monitor is `nft monitor` running in a namespace, its lines kept.
type monitor struct {
	mu    sync.Mutex
	lines []string
}

func startMonitor(t *testing.T, ns *lab.Namespace) *monitor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ns.Command(ctx, "nft", "monitor")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	m := &monitor{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m.mu.Lock()
			m.lines = append(m.lines, sc.Text())
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
	})
	return m
}

// mark makes a change no one else makes (a table added and deleted) and
// waits until the monitor has shown it, so that what it shows between two
// marks is exactly what happened between them.
// The monitor may not have subscribed yet when the first mark is made,
// and an event before that is never shown: the mark is made again until
// it is seen (between counts from the last one).
func (m *monitor) mark(t *testing.T, ns *lab.Namespace, name string) {
	t.Helper()
	lab.Eventually(t, 20*time.Second, func() error {
		if m.index("delete table inet "+name) >= 0 {
			return nil
		}
		ns.MustRun(t, "nft", "add", "table", "inet", name)
		ns.MustRun(t, "nft", "delete", "table", "inet", name)
		time.Sleep(200 * time.Millisecond)
		if m.index("delete table inet "+name) < 0 {
			return fmt.Errorf("nft monitor has not shown mark %s", name)
		}
		return nil
	})
}

// index is where the monitor last showed line, or -1.
func (m *monitor) index(line string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.lines) - 1; i >= 0; i-- {
		if strings.TrimSpace(m.lines[i]) == line {
			return i
		}
	}
	return -1
}

// between returns the events shown after mark a was deleted and before mark
// b was added.
func (m *monitor) between(a, b string) []string {
	from := m.index("delete table inet " + a)
	m.mu.Lock()
	defer m.mu.Unlock()
	to := len(m.lines)
	for i := from + 1; i < len(m.lines); i++ {
		if strings.TrimSpace(m.lines[i]) == "add table inet "+b {
			to = i
			break
		}
	}
	var out []string
	for _, l := range m.lines[from+1 : to] {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// TestRestartWritesNothing: a new Firewall whose first Set finds the kernel
// holding exactly its ruleset (a restart with the same policy) writes
// nothing: nft monitor shows no event. The same with a table a Firewall did
// not write (loaded by nft -f) is rewritten, since its rules carry no
// fingerprint.
func TestRestartWritesNothing(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	ns, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	fw := openIn(t, ns)
	if err := fw.Set(Build(wanPolicy())); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	mon := startMonitor(t, ns)
	mon.mark(t, ns, "mark_a")
	fw = openIn(t, ns)
	if err := fw.Set(Build(wanPolicy())); err != nil {
		t.Fatal(err)
	}
	mon.mark(t, ns, "mark_b")
	if ev := mon.between("mark_a", "mark_b"); len(ev) > 0 || fw.Batches() != 0 {
		t.Errorf("a restart with the same policy wrote %d batches; nft monitor showed %d events:\n%s", fw.Batches(), len(ev), strings.Join(ev, "\n"))
	}

	// After the restart a change is an update of what differs: the WAN
	// address from DHCP changes input (no RAs) and srcnat; each is flushed
	// and refilled, and nothing else is touched.
	if err := fw.Set(Build(dhcpWANPolicy())); err != nil {
		t.Fatal(err)
	}
	mon.mark(t, ns, "mark_c")
	ev := mon.between("mark_b", "mark_c")
	for _, e := range ev {
		f := strings.Fields(e)
		if len(f) < 5 || f[1] != "rule" || (f[4] != "input" && f[4] != "srcnat") {
			t.Errorf("a change after the restart touched more than the two chains that differ: %s", e)
		}
	}
	if fw.Batches() != 1 || len(ev) == 0 {
		t.Errorf("a change after the restart: %d batches, %d events, want one batch", fw.Batches(), len(ev))
	}
}

// TestWatchHeals: Watch tells of `nft flush ruleset`, `nft delete table inet
// gatewayd`, a rule inserted by hand and the table made dormant, and not of
// the Firewall's own
// batches; Set with the last ruleset then restores the table, as real
// forbidden packets show before, during and after.
func TestWatchHeals(t *testing.T) {
	s := newSite(t)
	serveTCP(t, s.lan, "0.0.0.0:8080")
	forbidden := tcp(s.lab, lanClient+":8080") // lab may forward only upstream
	r := Build(seedPolicy())
	if err := s.fw.Set(r); err != nil {
		t.Fatal(err)
	}
	changed := startWatch(t, s)
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Watch did not tell", what)
		}
	}
	if err := s.fw.Set(r); err != nil {
		t.Fatal(err)
	}

	if err := s.fw.Set(Build(seedLabSSH())); err != nil {
		t.Fatal(err)
	}
	if err := s.fw.Set(r); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
		t.Error("Watch told of the Firewall's own batches")
	case <-time.After(500 * time.Millisecond):
	}

	for _, c := range []struct {
		what string
		cmd  []string
	}{
		{"nft flush ruleset", []string{"nft", "flush", "ruleset"}},
		{"nft delete table", []string{"nft", "delete", "table", "inet", "gatewayd"}},
		{"a rule inserted by hand", []string{"nft", "insert", "rule", "inet", "gatewayd", "forward", "accept"}},
		{"the table made dormant", []string{"nft", "add", "table", "inet", "gatewayd", "{ flags dormant; }"}},
	} {
		expectDropped(t, "before "+c.what+": lab → lan", forbidden)
		n := s.fw.Batches()
		s.gw.MustRun(t, c.cmd...)
		wait(c.what)
		expectReach(t, "after "+c.what+": lab → lan (the table no longer protects)", forbidden)
		if err := s.fw.Set(r); err != nil {
			t.Fatal(err)
		}
		if s.fw.Batches() != n+1 {
			t.Errorf("%s: restoring took %d batches, want 1", c.what, s.fw.Batches()-n)
		}
		expectDropped(t, "restored after "+c.what+": lab → lan", forbidden)
		if err := s.fw.Set(r); err != nil || s.fw.Batches() != n+1 {
			t.Errorf("%s: Set again after the restore: %v, %d batches", c.what, err, s.fw.Batches()-n)
		}
	}
}

// startWatch runs the site's Firewall's Watch until the test ends, and
// returns once it listens (it joins the nftables group on its own
// goroutine, so the table is changed by hand until it tells; the caller
// then puts the table back).
func startWatch(t *testing.T, s *site) <-chan struct{} {
	t.Helper()
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.fw.Watch(ctx, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v when its context ended", err)
		}
	})
	lab.Eventually(t, 5*time.Second, func() error {
		s.gw.MustRun(t, "nft", "add", "counter", "inet", "gatewayd", "probe")
		s.gw.MustRun(t, "nft", "delete", "counter", "inet", "gatewayd", "probe")
		select {
		case <-changed:
			return nil
		case <-time.After(200 * time.Millisecond):
			return fmt.Errorf("Watch is not listening yet")
		}
	})
	return changed
}

// TestWatchClosed: Watch on a closed Firewall says so.
func TestWatchClosed(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	ns, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	fw := openIn(t, ns)
	_ = fw.Close()
	if err := fw.Watch(context.Background(), func() {}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Watch on a closed Firewall: %v", err)
	}
}
