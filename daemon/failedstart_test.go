package daemon_test

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFailedStartCleansUp: a first start that fails (port 53 of the DNS
// alias is taken) leaves the box as gatewayd found it, but for its closed
// firewall: no alias, route or sysctl of its own, and the error says so.
func TestFailedStartCleansUp(t *testing.T) {
	g := newGateway(t)
	snapshot := func() string {
		var b strings.Builder
		b.WriteString(g.ns.MustRun(t, "ip", "-4", "-o", "addr", "show"))
		b.WriteString(g.ns.MustRun(t, "ip", "-4", "route", "show", "table", "all"))
		for _, k := range []string{"ip_forward", "conf/all/send_redirects", "conf/eth1/send_redirects", "conf/eth1/rp_filter", "conf/all/accept_redirects"} {
			b.WriteString(k + "=" + g.ns.MustRun(t, "cat", "/proc/sys/net/ipv4/"+k))
		}
		return b.String()
	}
	before := snapshot()
	defer squat(t, g, "198.51.100.3:53").Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, err := g.ns.Start(ctx, bin, "run", "--config", g.conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("the daemon started although port 53 of its DNS alias is taken")
	}
	out := g.lab.Output(cmd)
	if !strings.Contains(out, "address already in use") || !strings.Contains(out, "the firewall stays in place, closed") ||
		!strings.Contains(out, "removed the aliases it had added") {
		t.Errorf("the error does not say what failed and what was left:\n%s", out)
	}
	if after := snapshot(); after != before {
		t.Errorf("the failed start left changes behind:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := g.ns.Run(ctx, "nft", "list", "table", "inet", "gatewayd"); err != nil {
		t.Errorf("the closed firewall did not stay: %v", err)
	}
}

// squat holds a UDP port on an address of the gateway's namespace (bound
// with IP_FREEBIND, so the address need not be there yet), as another
// program would.
func squat(t *testing.T, g *gateway, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	lc := &net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_FREEBIND, 1) })
		return serr
	}}
	pc, err := g.ns.ListenPacket(context.Background(), lc, "udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}
