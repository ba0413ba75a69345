package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatewayd/daemon"
)

// fakeDaemon answers the control socket a config names, as the daemon
// does, and records the requests. The config has no zone, so it has a
// warning; it is written to dir/gateway.toml.
type fakeDaemon struct {
	dir, conf string
	mu        sync.Mutex
	got       []daemon.Request
}

func newFakeDaemon(t *testing.T, answer func(daemon.Request) daemon.Response) *fakeDaemon {
	t.Helper()
	dir := t.TempDir()
	socket := filepath.Join(dir, "control.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := &fakeDaemon{dir: dir, conf: filepath.Join(dir, "gateway.toml")}
	text := "[gateway]\ninterface = \"eth1\"\ncontrol_socket = \"" + socket + "\"\n"
	if err := os.WriteFile(f.conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			var req daemon.Request
			if json.NewDecoder(conn).Decode(&req) == nil {
				f.mu.Lock()
				f.got = append(f.got, req)
				f.mu.Unlock()
				resp := answer(req)
				_ = json.NewEncoder(conn).Encode(&resp)
			}
			conn.Close()
		}
	}()
	return f
}

func (f *fakeDaemon) requests() []daemon.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]daemon.Request(nil), f.got...)
}

// unknownOps answers only the ops it is given, and the others as the
// daemon answers an op it does not know.
func unknownOps(known map[string]daemon.Response) func(daemon.Request) daemon.Response {
	return func(req daemon.Request) daemon.Response {
		if r, ok := known[req.Op]; ok {
			return r
		}
		return daemon.Response{Error: `unknown request "` + req.Op + `"`}
	}
}

const warning = "gateway.toml:1:1: warning: gateway: the file has no zone"

// TestReloadConfirm: reload --confirm sends the duration and the config's
// absolute path; the warnings go to stderr, the changes (the daemon's line
// saying how to confirm among them) to stdout.
func TestReloadConfirm(t *testing.T) {
	changes := []string{"ip addr add 192.168.1.1/24 dev eth1 label eth1:0", "# applied; run `gatewayd confirm` within 5m0s or this box returns to the previous config"}
	f := newFakeDaemon(t, unknownOps(map[string]daemon.Response{
		"reload": {OK: true, Changes: changes, Warnings: []string{warning}},
	}))
	t.Chdir(f.dir)
	var out, errOut bytes.Buffer
	if code := run([]string{"reload", "--confirm", "5m", "--config", "gateway.toml"}, &out, &errOut); code != 0 {
		t.Fatalf("gatewayd reload --confirm 5m: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if want := strings.Join(changes, "\n") + "\n"; out.String() != want {
		t.Errorf("stdout %q, want the changes %q", out.String(), want)
	}
	if errOut.String() != warning+"\n" {
		t.Errorf("stderr %q, want the warning %q", errOut.String(), warning)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("the daemon got %d requests, want 1", len(reqs))
	}
	if r := reqs[0]; r.Op != "reload" || r.Confirm != 5*time.Minute || r.Path != f.conf || !strings.Contains(r.Config, "control_socket") {
		t.Errorf("the daemon got op %q confirm %v path %q, want reload, 5m0s, %q with the file", r.Op, r.Confirm, r.Path, f.conf)
	}
}

// TestReloadWarningsAreNotChanges: a reload that changes nothing says so,
// whatever the warnings; a plain reload sends no confirm.
func TestReloadWarningsAreNotChanges(t *testing.T) {
	f := newFakeDaemon(t, unknownOps(map[string]daemon.Response{
		"reload": {OK: true, Warnings: []string{warning}},
	}))
	var out, errOut bytes.Buffer
	if code := run([]string{"reload", "--config", f.conf}, &out, &errOut); code != 0 || out.String() != "no changes\n" || errOut.String() != warning+"\n" {
		t.Errorf("gatewayd reload: exit %d, stdout %q, stderr %q; want 0, no changes, the warning", code, out.String(), errOut.String())
	}
	if r := f.requests(); len(r) != 1 || r[0].Confirm != 0 {
		t.Errorf("a plain reload sent %+v", r)
	}
	if code := run([]string{"reload", "--confirm", "-1s", "--config", f.conf}, &out, &errOut); code != 2 {
		t.Errorf("gatewayd reload --confirm -1s: exit %d, want 2", code)
	}
}

// TestConfirm: "confirmed", or the daemon's error and exit 1.
func TestConfirm(t *testing.T) {
	pending := true
	f := newFakeDaemon(t, func(req daemon.Request) daemon.Response {
		if req.Op != "confirm" {
			return daemon.Response{Error: "unexpected " + req.Op}
		}
		if !pending {
			return daemon.Response{Error: "no reload is waiting for confirmation"}
		}
		pending = false
		return daemon.Response{OK: true}
	})
	var out, errOut bytes.Buffer
	if code := run([]string{"confirm", "--config", f.conf}, &out, &errOut); code != 0 || out.String() != "confirmed\n" || errOut.Len() > 0 {
		t.Errorf("gatewayd confirm: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"confirm", "--config", f.conf}, &out, &errOut); code != 1 || out.Len() > 0 ||
		errOut.String() != "gatewayd confirm: no reload is waiting for confirmation\n" {
		t.Errorf("gatewayd confirm with nothing pending: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// TestPlanPrintsWarningsFirst: the running daemon's plan, after the
// warnings the daemon found in the file it was sent (not a parse of its
// own, which would print them twice or differ from the daemon's).
func TestPlanPrintsWarningsFirst(t *testing.T) {
	const daemonWarning = "gateway.toml:9:1: warning: the daemon's own"
	f := newFakeDaemon(t, unknownOps(map[string]daemon.Response{
		"plan": {OK: true, Changes: []string{"nft add table inet gatewayd"}, Warnings: []string{daemonWarning}},
	}))
	var out, errOut bytes.Buffer
	if code := run([]string{"plan", "--config", f.conf}, &out, &errOut); code != 0 {
		t.Fatalf("gatewayd plan: exit %d\n%s", code, errOut.String())
	}
	if want := daemonWarning + "\nnft add table inet gatewayd\n"; out.String() != want {
		t.Errorf("gatewayd plan printed\n%s\nwant the daemon's warning, then its step:\n%s", out.String(), want)
	}
}

// TestPlanWithoutDaemon: with no daemon, plan reads the file itself and
// prints its warnings before what a start would apply.
func TestPlanWithoutDaemon(t *testing.T) {
	f := newFakeDaemon(t, unknownOps(nil))
	text := "[gateway]\ninterface = \"eth1\"\ncontrol_socket = \"" + filepath.Join(f.dir, "none.sock") + "\"\n"
	if err := os.WriteFile(f.conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"plan", "--config", f.conf}, &out, &errOut); code != 0 {
		t.Fatalf("gatewayd plan: exit %d\n%s", code, errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], f.conf+":1:1: warning: ") || lines[1] != "# gatewayd is not running; starting it would apply:" {
		t.Errorf("gatewayd plan without a daemon printed\n%s\nwant the file's warning, then what a start would apply", out.String())
	}
}

// TestCheckPrintsWarnings: a file with warnings is valid: exit 0.
func TestCheckPrintsWarnings(t *testing.T) {
	f := newFakeDaemon(t, unknownOps(nil))
	var out, errOut bytes.Buffer
	code := run([]string{"check", "--config", f.conf}, &out, &errOut)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], f.conf+":1:1: warning: ") || !strings.HasSuffix(lines[1], ": ok (0 aliases, 0 held by "+hostname(t)+", 0 zones)") {
		t.Errorf("gatewayd check: exit %d\n%s%s\nwant the warning, then ok, exit 0", code, out.String(), errOut.String())
	}
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLeasesDelete: a daemon without the request (an older one) gets a
// plain answer; with the daemon stopped the store itself deletes, durably,
// and says when there is nothing to delete.
func TestLeasesDelete(t *testing.T) {
	f := newFakeDaemon(t, unknownOps(nil))
	var out, errOut bytes.Buffer
	code := run([]string{"leases", "delete", "192.168.1.50", "--config", f.conf}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "not supported by the running daemon") {
		t.Errorf("gatewayd leases delete, an older daemon running: exit %d, stderr %q", code, errOut.String())
	}

	stopped := filepath.Join(f.dir, "stopped.toml")
	text := "[gateway]\ninterface = \"eth1\"\nstate_dir = \"" + filepath.Join(f.dir, "state") + "\"\ncontrol_socket = \"" + filepath.Join(f.dir, "none.sock") + "\"\n"
	if err := os.WriteFile(stopped, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	code = run([]string{"leases", "delete", "192.168.1.50", "--config", stopped}, &out, &errOut)
	if want := "gatewayd leases: no lease for 192.168.1.50\n"; code != 1 || errOut.String() != want {
		t.Errorf("gatewayd leases delete, daemon stopped: exit %d, stderr %q, want 1, %q", code, errOut.String(), want)
	}
}

// TestAdoptRefusesWhileRunning: adopt is daemon.Adopt, which wants the
// daemon stopped (the lab tests in daemon/ take addresses over).
func TestAdoptRefusesWhileRunning(t *testing.T) {
	f := newFakeDaemon(t, unknownOps(nil))
	var out, errOut bytes.Buffer
	code := run([]string{"adopt", "--config", f.conf}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "gatewayd adopt: the daemon is running") || !strings.Contains(errOut.String(), "stop it first") {
		t.Errorf("gatewayd adopt with a daemon running: exit %d, stderr %q", code, errOut.String())
	}
}
