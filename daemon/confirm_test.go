package daemon_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatewayd/daemon"
	"gatewayd/lab"
)

// proxyService is a service the lan may be given: tcp/3128 on the router
// alias.
const proxyService = `
[service.proxy]
ports = ["tcp/3128"]
alias = "router"
`

// TestConfirmOnTheWire: `reload --confirm 2s` applies the new policy at once
// (a port it opens is reachable); without `confirm` the daemon returns to
// the old policy by itself (the port is closed again), and with `confirm`
// in time it keeps the new one past the deadline. It drives the control
// socket directly, as the CLI does.
func TestConfirmOnTheWire(t *testing.T) {
	s := newWANSite(t)
	s.client.MustRun(t, "ip", "addr", "add", "192.0.2.50/24", "dev", "eth0")
	s.client.MustRun(t, "ip", "route", "add", "default", "via", "192.0.2.1")
	s.write(staticUpstream, proxyService)
	old := mustRead(s.g.conf)
	opened := strings.Replace(old, `allow = ["dhcp", "dns", "ping"]`, `allow = ["dhcp", "dns", "ping", "proxy"]`, 1)
	serveTCP(t, s.g.ns, "0.0.0.0:3128")
	s.g.start()
	proxy := tcpTo(s.client, "192.0.2.1:3128")
	wantClosed(t, "the proxy before the reload", proxy)

	socket := filepath.Join(s.g.dir, "run", "control.sock")
	call := func(req daemon.Request) *daemon.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := daemon.Call(ctx, socket, req)
		if err != nil {
			t.Fatalf("%s: %v", req.Op, err)
		}
		return resp
	}
	reloadConfirm := func() {
		t.Helper()
		s.g.write(opened)
		resp := call(daemon.Request{Op: "reload", Path: s.g.conf, Config: opened, Confirm: 2 * time.Second})
		if !resp.OK || len(resp.Changes) == 0 || !strings.Contains(resp.Changes[len(resp.Changes)-1], "gatewayd confirm") {
			t.Fatalf("reload --confirm 2s: %+v", resp)
		}
		if st := s.g.status(); st.Confirm == nil {
			t.Errorf("status does not say when the reload is undone")
		}
		wantOpen(t, "the proxy right after reload --confirm", proxy)
	}

	// Not confirmed: back to the old policy.
	reloadConfirm()
	gen := s.g.status().Generation
	lab.Eventually(t, 10*time.Second, func() error {
		if proxy(closedTime) == nil {
			return errors.New("the proxy is still open")
		}
		return nil
	})
	wantClosed(t, "the proxy after the unconfirmed reload timed out", proxy)
	st := s.g.status()
	if st.Confirm != nil || st.Generation <= gen || st.Degraded != "" {
		t.Errorf("status after the return: confirm_by %v, generation %d (was %d), degraded %q", st.Confirm, st.Generation, gen, st.Degraded)
	}
	// The daemon runs the old file again: applying it changes nothing.
	if resp := call(daemon.Request{Op: "reload", Path: s.g.conf, Config: old}); !resp.OK || len(resp.Changes) != 0 {
		t.Errorf("reload of the old file after the return: %+v, want no changes", resp)
	}

	// Confirmed in time: the new policy stays past the deadline.
	reloadConfirm()
	if resp := call(daemon.Request{Op: "confirm"}); !resp.OK {
		t.Fatalf("confirm: %+v", resp)
	}
	time.Sleep(3 * time.Second)
	wantOpen(t, "the proxy after a confirmed reload's deadline", proxy)
	if st := s.g.status(); st.Confirm != nil {
		t.Errorf("status after confirm still waits until %v", st.Confirm)
	}
	if resp := call(daemon.Request{Op: "confirm"}); resp.OK || !strings.Contains(resp.Error, "no reload is waiting") {
		t.Errorf("a second confirm: %+v, want an error", resp)
	}
	if resp := call(daemon.Request{Op: "reload", Path: s.g.conf, Config: opened}); !resp.OK || len(resp.Changes) != 0 {
		t.Errorf("reload of the confirmed file: %+v, want no changes", resp)
	}
}

// TestConfirmSurvivesARestart: a daemon restarted while a --confirm reload
// waits (the admin locked out power-cycles the box) starts with the config
// it would have returned to, not with the unconfirmed file on disk.
func TestConfirmSurvivesARestart(t *testing.T) {
	s := newWANSite(t)
	s.client.MustRun(t, "ip", "addr", "add", "192.0.2.50/24", "dev", "eth0")
	s.client.MustRun(t, "ip", "route", "add", "default", "via", "192.0.2.1")
	s.write(staticUpstream, proxyService)
	old := mustRead(s.g.conf)
	opened := strings.Replace(old, `allow = ["dhcp", "dns", "ping"]`, `allow = ["dhcp", "dns", "ping", "proxy"]`, 1)
	serveTCP(t, s.g.ns, "0.0.0.0:3128")
	s.g.start()
	proxy := tcpTo(s.client, "192.0.2.1:3128")

	s.g.write(opened)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := daemon.Call(ctx, filepath.Join(s.g.dir, "run", "control.sock"),
		daemon.Request{Op: "reload", Path: s.g.conf, Config: opened, Confirm: time.Hour})
	if err != nil || !resp.OK {
		t.Fatalf("reload --confirm 1h: %+v %v", resp, err)
	}
	wantOpen(t, "the proxy right after reload --confirm", proxy)

	s.g.stop()
	s.g.start()
	wantClosed(t, "the proxy after a restart that was never confirmed", proxy)
	if st := s.g.status(); st.Confirm != nil {
		t.Errorf("after the restart status still waits for a confirmation until %v", st.Confirm)
	}
	// The return happened once: the next restart starts with the file.
	s.g.stop()
	s.g.start()
	wantOpen(t, "the proxy after a second restart, with the file as it is", proxy)

	// Confirmed, a reload stays across a restart too: the confirmation
	// forgets the config it would have returned to.
	s.g.write(old)
	resp, err = daemon.Call(ctx, filepath.Join(s.g.dir, "run", "control.sock"),
		daemon.Request{Op: "reload", Path: s.g.conf, Config: old, Confirm: time.Hour})
	if err != nil || !resp.OK {
		t.Fatalf("reload --confirm 1h: %+v %v", resp, err)
	}
	wantClosed(t, "the proxy right after the second reload --confirm", proxy)
	if resp, err := daemon.Call(ctx, filepath.Join(s.g.dir, "run", "control.sock"), daemon.Request{Op: "confirm"}); err != nil || !resp.OK {
		t.Fatalf("confirm: %+v %v", resp, err)
	}
	s.g.stop()
	s.g.start()
	wantClosed(t, "the proxy after a restart that follows a confirmed reload", proxy)
}
