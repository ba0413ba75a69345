package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gatewayd/lab"
)

// TestMain lets a test run this command line in a child process (as
// another user): GATEWAYD_TEST_MAIN=1 makes the test binary gatewayd.
func TestMain(m *testing.M) {
	if os.Getenv("GATEWAYD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestStatusAsNonRootSaysRootOnly: a user who may not connect to the
// control socket is told so, not shown connect: permission denied.
func TestStatusAsNonRootSaysRootOnly(t *testing.T) {
	lab.RequireTools(t, "setpriv")
	// Not t.TempDir: its parent is root's only.
	dir, err := os.MkdirTemp("", "gatewayd-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "control.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chmod(socket, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gateway.toml")
	text := "[gateway]\ninterface = \"eth1\"\ncontrol_socket = \"" + socket + "\"\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(dir, "gatewayd")
	copyFile(t, os.Args[0], self, 0o755)

	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", self, "status", "--config", conf)
	cmd.Env = append(os.Environ(), "GATEWAYD_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	want := "gatewayd status: the control socket " + socket + " is root's only: run this as root"
	if err == nil || !strings.Contains(string(out), want) || strings.Contains(string(out), "permission denied") {
		t.Errorf("gatewayd status as nobody: %v\n%s\nwant %q", err, out, want)
	}
}
