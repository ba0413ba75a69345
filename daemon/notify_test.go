package daemon_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNotifyAndSIGHUP runs the daemon as systemd would (Type=notify): it says
// READY=1 once the config is applied, RELOADING=1 then READY=1 around a SIGHUP
// reload that changes something, and STOPPING=1 on SIGTERM.
func TestNotifyAndSIGHUP(t *testing.T) {
	g := newGateway(t)
	sock := filepath.Join(g.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(prefix string) {
		t.Helper()
		select {
		case m := <-msgs:
			if !strings.HasPrefix(m, prefix) {
				t.Fatalf("systemd got %q, want %s", m, prefix)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s from the daemon", prefix)
		}
	}

	cmd := g.ns.Command(context.Background(), bin, "run", "--config", g.conf)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	if err := g.ns.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	g.cmd = cmd
	expect("READY=1")
	g.wantAddrs(seeded)

	text, _ := os.ReadFile(g.conf)
	g.write(strings.Replace(string(text), `address = "203.0.113.1/24"`, `address = "203.0.113.9/24"`, 1))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expect("RELOADING=1")
	expect("READY=1")
	g.wantAddrs(map[string]string{"203.0.113.1/24": "", "203.0.113.9/24": "eth1:3"})

	g.stop()
	expect("STOPPING=1")
}
