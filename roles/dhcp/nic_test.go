package dhcp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatewayd/lab"
)

// replug deletes the gateway's eth1 (its addresses go with it) or, with
// create, plugs a new one into the switch and gives it the addresses back.
func (n *testNet) replug(create bool) {
	n.t.Helper()
	if !create {
		n.gw.MustRun(n.t, "ip", "link", "del", "eth1")
		return
	}
	if _, err := n.lab.Plug(n.sw, n.gw, "eth1"); err != nil {
		n.t.Fatal(err)
	}
	n.gw.MustRun(n.t, "ip", "addr", "add", "192.0.2.250/24", "dev", "eth1")
	for i, a := range []string{"192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24"} {
		n.gw.MustRun(n.t, "ip", "addr", "add", a, "dev", "eth1", "label", fmt.Sprintf("eth1:%d", i))
	}
}

// udhcpcLease runs udhcpc once in ns: two DISCOVERs a second apart, so a
// lease comes within 2 s or not at all. It returns the address bound.
func udhcpcLease(t *testing.T, c *lab.Namespace) (string, error) {
	t.Helper()
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	if _, err := c.Run(t.Context(), "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", clientScript(t, dir, env), "-t", "2", "-T", "1"); err != nil {
		return "", err
	}
	e, err := readEnv(env, "bound")
	if err != nil {
		return "", err
	}
	return e["ip"], nil
}

// TestNICRecreated: the NIC deleted and created again (a new ifindex) is
// noticed by the next Set of the unchanged Config, which re-opens the
// sockets; with the NIC gone, Set waits for it without an error.
func TestNICRecreated(t *testing.T) {
	n := newTestNet(t, "udhcpc")
	c := n.client("c1", "02:00:00:00:0e:01")
	if _, err := udhcpcLease(t, c); err != nil {
		t.Fatal(err)
	}
	conn := n.srv.conn
	n.set(n.cfg) // nothing changed: nothing re-opened
	if n.srv.conn != conn || n.srv.Reopens() != 0 {
		t.Fatalf("Set with the same Config and the same NIC re-opened the sockets (%d reopens)", n.srv.Reopens())
	}

	// Deleted and created again between two Sets.
	n.replug(false)
	n.replug(true)
	n.set(n.cfg)
	if n.srv.conn == conn || n.srv.conn.ifindex == conn.ifindex || n.srv.Status().Waiting != "" {
		t.Fatalf("after the NIC came back with a new index: conn %p (was %p), status %+v", n.srv.conn, conn, n.srv.Status())
	}
	if _, err := udhcpcLease(t, c); err != nil {
		t.Fatalf("no lease after the NIC was created again: %v", err)
	}
	if n.srv.Reopens() != 1 {
		t.Fatalf("re-opening on the new NIC counted %d times, want 1", n.srv.Reopens())
	}

	// Gone at a Set: the role waits, without an error, and says so.
	n.replug(false)
	n.set(n.cfg)
	st := n.srv.Status()
	if !st.Running || !strings.Contains(st.Waiting, "eth1") || n.srv.conn != nil {
		t.Fatalf("with the NIC gone: status %+v", st)
	}
	n.set(n.cfg) // still gone: still waiting, no error
	if !strings.Contains(n.logs.String(), "not serving: waiting for interface eth1") || strings.Count(n.logs.String(), "not serving") != 1 {
		t.Errorf("the wait is not logged once:\n%s", n.logs)
	}
	n.replug(true)
	n.set(n.cfg)
	if st := n.srv.Status(); st.Waiting != "" || n.srv.conn == nil || n.srv.Reopens() != 2 {
		t.Fatalf("after the NIC came back: status %+v, %d reopens (want 2)", st, n.srv.Reopens())
	}
	if _, err := udhcpcLease(t, c); err != nil {
		t.Fatalf("no lease after the NIC came back: %v", err)
	}
}

// TestNICAbsentAtStart: a first Set without the NIC is no error; the lease
// comes once the NIC appears and Set runs again.
func TestNICAbsentAtStart(t *testing.T) {
	n := newTestNet(t, "udhcpc")
	c := n.client("c1", "02:00:00:00:0e:02")
	n.replug(false)
	n.restart() // New and Set with eth1 absent: no error
	if st := n.srv.Status(); !st.Running || !strings.Contains(st.Waiting, "eth1") {
		t.Fatalf("started without the NIC: status %+v", st)
	}
	n.replug(true)
	n.set(n.cfg)
	if st := n.srv.Status(); st.Waiting != "" {
		t.Fatalf("after the NIC appeared: status %+v", st)
	}
	if _, err := udhcpcLease(t, c); err != nil {
		t.Fatalf("no lease after the NIC appeared: %v", err)
	}
}

// A Set that cannot tell whether the NIC is still there (the lookup fails
// with something other than ENODEV) and cannot open new sockets either
// returns the error and keeps the sockets that serve: on error the
// previous state keeps running.
func TestFollowNICKeepsServingSockets(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	raw, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()                       // its lookups now fail: "use of closed file", not ENODEV
	name := strings.Repeat("x", 20) // too long for any NIC: listen fails too
	old := &conn{f: r, raw: raw, ifname: name, ifindex: 7}
	cur := &Config{Interface: name}
	s := &Server{log: quietLog(), cur: cur, conn: old}
	if err := s.followNIC(cur, old); err == nil {
		t.Fatal("no error")
	}
	if s.conn != old || s.waiting != "" || old.closed.Load() {
		t.Errorf("the serving sockets were dropped: conn %p (old %p), waiting %q, closed %v", s.conn, old, s.waiting, old.closed.Load())
	}
}
