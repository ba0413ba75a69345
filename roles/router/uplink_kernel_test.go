package router

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// newUplinkLab is the router lab plus a WAN port: the gateway's eth0 on a
// link of its own to an "isp" namespace (203.0.113.1/24 on its eth0), which
// also holds 198.51.100.1, beyond the ISP.
func newUplinkLab(t *testing.T) (*routerLab, *lab.Namespace) {
	t.Helper()
	rl := newRouterLab(t)
	isp, err := rl.l.Namespace("isp")
	if err != nil {
		t.Fatal(err)
	}
	rl.linkISP(t, isp)
	if err := isp.Addr("lo", "198.51.100.1/32"); err != nil {
		t.Fatal(err)
	}
	// The kernel's default, which some distributions change for every
	// namespace: deleting a subnet's primary address deletes its
	// secondaries.
	for _, dev := range []string{"all", "default", "eth0"} {
		if err := rl.gw.Sysctl("net/ipv4/conf/"+dev+"/promote_secondaries", "0"); err != nil {
			t.Fatal(err)
		}
	}
	return rl, isp
}

// linkISP (re)creates the WAN link, keeping the gateway end's MAC address
// across re-creations as a real NIC would.
func (rl *routerLab) linkISP(t *testing.T, isp *lab.Namespace) {
	t.Helper()
	if err := rl.l.Link(rl.gw, "eth0", isp, "eth0"); err != nil {
		t.Fatal(err)
	}
	rl.gw.MustRun(t, "ip", "link", "set", "eth0", "down")
	rl.gw.MustRun(t, "ip", "link", "set", "eth0", "address", "02:00:00:00:0e:01", "up")
	if err := isp.Addr("eth0", "203.0.113.1/24"); err != nil {
		t.Fatal(err)
	}
}

func wanStatic(addr string) *Config {
	return &Config{Interface: "eth1", Routes: []Route{rt("198.18.0.0/15 via 192.168.1.250 dev eth1")},
		Uplink: &Uplink{Interface: "eth0", Address: netip.MustParsePrefix(addr), Gateway: netip.MustParseAddr("203.0.113.1")}}
}

func (rl *routerLab) addrs(t *testing.T, dev string) string {
	t.Helper()
	return rl.gw.MustRun(t, "ip", "-4", "-o", "addr", "show", "dev", dev)
}

// validLft is the kernel's valid_lft of addr on eth0: "forever", or the
// seconds left.
func (rl *routerLab) validLft(t *testing.T, addr string) string {
	t.Helper()
	f := strings.Fields(rl.gw.MustRun(t, "ip", "-4", "-o", "addr", "show", "dev", "eth0", "to", addr))
	if i := slices.Index(f, "valid_lft"); i >= 0 && i+1 < len(f) {
		return strings.TrimSuffix(f[i+1], "sec")
	}
	t.Fatalf("no valid_lft for %s on eth0: %q", addr, f)
	return ""
}

const wanDefault = "default via 203.0.113.1 dev eth0 proto 177"

func TestUplinkStatic(t *testing.T) {
	rl, _ := newUplinkLab(t)
	raWAN, raNIC := rl.sysctl(t, "net/ipv6/conf/eth0/accept_ra"), rl.sysctl(t, "net/ipv6/conf/eth1/accept_ra")
	if raWAN != "1" || raNIC != "1" {
		t.Fatalf("accept_ra before: eth0 %s, eth1 %s; the test wants the kernel default 1", raWAN, raNIC)
	}
	r := rl.open(t)
	cfg := wanStatic("203.0.113.2/24")
	plan := strings.Join(rl.plan(t, r, cfg), "\n")
	for _, want := range []string{"sysctl -w net.ipv4.conf.eth0.promote_secondaries=1", "sysctl -w net.ipv6.conf.eth0.accept_ra=0", "ip addr add 203.0.113.2/24 dev eth0", "ip route add default via 203.0.113.1 dev eth0"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "pending") {
		t.Errorf("plan has pending steps:\n%s", plan)
	}
	if err := rl.set(r, cfg); err != nil {
		t.Fatal(err)
	}
	t.Run("held", func(t *testing.T) {
		if a := rl.addrs(t, "eth0"); !strings.Contains(a, "inet 203.0.113.2/24") {
			t.Errorf("eth0 addresses:\n%s", a)
		}
		if got := rl.sysctl(t, "net/ipv4/conf/eth0/promote_secondaries"); got != "1" {
			t.Errorf("eth0 promote_secondaries = %s, want 1", got)
		}
		if v := rl.validLft(t, "203.0.113.2/24"); v != "forever" {
			t.Errorf("the static address's valid_lft is %s, want forever", v)
		}
		if routes := rl.routes(t); !hasLine(routes, wanDefault) {
			t.Errorf("routes lack %q:\n%s", wanDefault, routes)
		}
		for dev, want := range map[string]string{"eth0": "0", "eth1": "0"} {
			if got := rl.sysctl(t, "net/ipv6/conf/"+dev+"/accept_ra"); got != want {
				t.Errorf("%s accept_ra = %s, want %s", dev, got, want)
			}
		}
		st := r.Status()
		if u := st.Uplink; u == nil || u.Address != cfg.Uplink.Address || u.Gateway != cfg.Uplink.Gateway || !u.Owned || u.DHCP != nil {
			t.Errorf("uplink status %+v", u)
		}
		if st.Upstream != "203.0.113.1" || len(st.Pending) != 0 || st.Error != "" {
			t.Errorf("status %+v", st)
		}
		rec, err := loadRecord(rl.state)
		if err != nil || !slices.Contains(rec.Addresses, ownedAddr{Interface: "eth0", Address: cfg.Uplink.Address}) {
			t.Errorf("record %+v (%v) does not own the WAN address", rec, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rl.gw.Ping(ctx, netip.MustParseAddr("198.51.100.1")); err != nil {
			t.Errorf("gateway → beyond the ISP: %v", err)
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		n, ino := r.Writes(), rl.recordInode(t)
		if err := rl.set(r, wanStatic("203.0.113.2/24")); err != nil {
			t.Fatal(err)
		}
		if r.Writes() != n || rl.recordInode(t) != ino {
			t.Errorf("the same config wrote %d times, record rewritten: %v", r.Writes()-n, rl.recordInode(t) != ino)
		}
		if p := rl.plan(t, r, cfg); len(p) != 0 {
			t.Errorf("plan for the applied config: %q", p)
		}
	})
	t.Run("accept_ra", func(t *testing.T) {
		ra := wanStatic("203.0.113.2/24")
		ra.Uplink.AcceptRA = true
		if err := rl.set(r, ra); err != nil {
			t.Fatal(err)
		}
		if got := rl.sysctl(t, "net/ipv6/conf/eth0/accept_ra"); got != "2" {
			t.Errorf("eth0 accept_ra = %s with AcceptRA, want 2", got)
		}
	})
	// The new address of the same subnet is added as a secondary of the
	// old one, which is then deleted: the kernel must promote the new one,
	// not delete it with its primary.
	t.Run("address moves", func(t *testing.T) {
		if err := rl.set(r, wanStatic("203.0.113.3/24")); err != nil {
			t.Fatal(err)
		}
		a := rl.addrs(t, "eth0")
		if !strings.Contains(a, "inet 203.0.113.3/24") || strings.Contains(a, "203.0.113.2/") {
			t.Errorf("eth0 addresses:\n%s", a)
		}
		if routes := rl.routes(t); !hasLine(routes, wanDefault) {
			t.Errorf("routes lack %q:\n%s", wanDefault, routes)
		}
		if st := r.Status(); len(st.Pending) != 0 || st.Error != "" {
			t.Errorf("status %+v", st)
		}
	})
	// An address added by hand after gatewayd's is a secondary of it; the
	// release deletes gatewayd's, the primary, and must leave it.
	rl.gw.MustRun(t, "ip", "addr", "add", "203.0.113.9/24", "dev", "eth0")
	t.Run("released", func(t *testing.T) {
		if err := rl.set(r, nil); err != nil {
			t.Fatal(err)
		}
		if a := rl.addrs(t, "eth0"); strings.Contains(a, "203.0.113.3/") || !strings.Contains(a, "inet 203.0.113.9/24") {
			t.Errorf("after release eth0 has:\n%s", a)
		}
		if got := rl.sysctl(t, "net/ipv4/conf/eth0/promote_secondaries"); got != "0" {
			t.Errorf("eth0 promote_secondaries = %s after release, want 0 as found", got)
		}
		if routes := rl.routes(t); strings.Contains(routes, "proto 177") {
			t.Errorf("after release:\n%s", routes)
		}
		for dev, want := range map[string]string{"eth0": raWAN, "eth1": raNIC} {
			if got := rl.sysctl(t, "net/ipv6/conf/"+dev+"/accept_ra"); got != want {
				t.Errorf("%s accept_ra = %s after release, want %s", dev, got, want)
			}
		}
		if st := r.Status(); st.Held || st.Uplink != nil || len(st.Pending) != 0 {
			t.Errorf("status %+v", st)
		}
	})
}

// dhcpServer is dnsmasq serving DHCP on eth0 of a lab namespace.
type dhcpServer struct {
	l   *lab.Lab
	cmd *exec.Cmd
}

// startDnsmasq serves two-minute leases (dnsmasq's shortest) of
// <net>.50–<net>.60 in <net>.0/24 (unless extra has a --dhcp-range), with
// <net>.1 as the router, on eth0 of ns, with extra options. It does not
// bind to the interface, so it keeps serving when the link is re-created;
// it is authoritative, so it refuses (DHCPNAK) a request for an address it
// would not give.
func startDnsmasq(t *testing.T, rl *routerLab, ns *lab.Namespace, net string, extra ...string) *dhcpServer {
	t.Helper()
	leases := filepath.Join(t.TempDir(), "dnsmasq.leases")
	argv := []string{"dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=eth0",
		"--dhcp-option=option:router," + net + ".1", "--dhcp-leasefile=" + leases,
		"--dhcp-authoritative", "--no-ping", "--log-dhcp", "--user=root", "--pid-file="}
	if !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "--dhcp-range=") }) {
		argv = append(argv, "--dhcp-range="+net+".50,"+net+".60,255.255.255.0,2m")
	}
	argv = append(argv, extra...)
	cmd, err := ns.Start(context.Background(), argv...)
	if err != nil {
		t.Fatal(err)
	}
	return &dhcpServer{l: rl.l, cmd: cmd}
}

func (s *dhcpServer) log() string { return s.l.Output(s.cmd) }

// stop ends the server and waits for it.
func (s *dhcpServer) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
}

// dnsmasqISP runs dnsmasq as the ISP's DHCP server on its eth0: leases of
// 203.0.113.50–60, renewed after 2 s, rebound after 4 s.
func dnsmasqISP(t *testing.T, rl *routerLab, isp *lab.Namespace) func() string {
	t.Helper()
	return startDnsmasq(t, rl, isp, "203.0.113", "--dhcp-option=option:dns-server,203.0.113.53",
		"--dhcp-option=option:T1,2", "--dhcp-option=option:T2,4").log
}

func dhcpUplink() *Config {
	return &Config{Interface: "eth1", Uplink: &Uplink{Interface: "eth0", DHCP: true, Hostname: "gw-test"}}
}

// bound waits for r to hold a lease extended at least renewals times, with
// its address on eth0 and the default route via the ISP, and returns it.
func (rl *routerLab) bound(t *testing.T, r *Router, renewals int) *UplinkStatus {
	t.Helper()
	var u *UplinkStatus
	lab.Eventually(t, 20*time.Second, func() error {
		u = r.Status().Uplink
		switch {
		case u == nil || u.DHCP == nil:
			return fmt.Errorf("uplink status %+v", u)
		case u.DHCP.State != stateBound || u.DHCP.Renewals < renewals || !u.Address.IsValid():
			return fmt.Errorf("lease %+v at %s", *u.DHCP, u.Address)
		case !strings.Contains(rl.addrs(t, "eth0"), "inet "+u.Address.String()):
			return fmt.Errorf("%s is not on eth0", u.Address)
		case !hasLine(rl.routes(t), wanDefault):
			return fmt.Errorf("no %q", wanDefault)
		}
		return nil
	})
	return u
}

func TestUplinkDHCP(t *testing.T) {
	lab.RequireTools(t, "dnsmasq")
	rl, isp := newUplinkLab(t)
	log := dnsmasqISP(t, rl, isp)
	r := rl.open(t)
	cfg := dhcpUplink()
	if p := strings.Join(rl.plan(t, r, cfg), "\n"); !strings.Contains(p, "dhcp client start on eth0") {
		t.Errorf("plan:\n%s", p)
	}
	if err := rl.set(r, cfg); err != nil {
		t.Fatal(err)
	}
	u := rl.bound(t, r, 0)
	addr := u.Address
	parent := t
	t.Run("lease", func(t *testing.T) {
		if !netip.MustParsePrefix("203.0.113.0/24").Contains(addr.Addr()) || addr.Bits() != 24 || u.Gateway != netip.MustParseAddr("203.0.113.1") || !u.Owned {
			t.Errorf("uplink %+v", u)
		}
		d := u.DHCP
		if d.Server != netip.MustParseAddr("203.0.113.1") || !slices.Equal(d.DNS, []netip.Addr{netip.MustParseAddr("203.0.113.53")}) ||
			!d.Acquired.Before(d.Renew) || !d.Renew.Before(d.Rebind) || !d.Rebind.Before(d.Expires) {
			t.Errorf("lease %+v", d)
		}
		if out := log(); !strings.Contains(out, "DHCPACK(eth0) "+addr.Addr().String()) || !strings.Contains(out, "gw-test") {
			t.Errorf("dnsmasq did not ACK %s to gw-test:\n%s", addr.Addr(), out)
		}
		if st := r.Status(); len(st.Pending) != 0 || st.Error != "" || st.Upstream != "203.0.113.1" {
			t.Errorf("status %+v", st)
		}
		// The kernel drops the address when the lease ends, even without
		// gatewayd.
		if v, err := strconv.Atoi(rl.validLft(t, addr.String())); err != nil || v > 120 {
			t.Errorf("the leased address's valid_lft is %d (%v), want the lease's 2 minutes at most", v, err)
		}
	})
	t.Run("renewal keeps them", func(t *testing.T) {
		// Shortened by hand: the renewal gives it the lease's lifetime again.
		rl.gw.MustRun(t, "ip", "addr", "change", addr.String(), "dev", "eth0", "valid_lft", "30", "preferred_lft", "30")
		if got := rl.bound(t, r, r.Status().Uplink.DHCP.Renewals+1).Address; got != addr {
			t.Errorf("renewed to %s, had %s", got, addr)
		}
		lab.Eventually(t, 5*time.Second, func() error {
			if v, err := strconv.Atoi(rl.validLft(t, addr.String())); err != nil || v <= 60 {
				return fmt.Errorf("valid_lft %d (%v) after the renewal, want the lease's 2 minutes again", v, err)
			}
			return nil
		})
	})
	t.Run("link down and up", func(t *testing.T) {
		rl.gw.MustRun(t, "ip", "link", "set", "eth0", "down")
		if err := rl.set(r, cfg); err != nil {
			t.Fatal(err)
		}
		if p := r.Status().Pending; !hasPending(p, "ip route add default via 203.0.113.1 dev eth0", "interface eth0 is down") {
			t.Errorf("pending %+v", p)
		}
		rl.gw.MustRun(t, "ip", "link", "set", "eth0", "up")
		if err := rl.set(r, cfg); err != nil {
			t.Fatal(err)
		}
		if routes := rl.routes(t); !hasLine(routes, wanDefault) {
			t.Errorf("the Set after the link came up left:\n%s", routes)
		}
		// A renewal on the socket opened again.
		if got := rl.bound(t, r, r.Status().Uplink.DHCP.Renewals+1).Address; got != addr {
			t.Errorf("renewed to %s, had %s", got, addr)
		}
	})
	t.Run("NIC deleted and re-created", func(t *testing.T) {
		rl.gw.MustRun(t, "ip", "link", "del", "eth0")
		if err := rl.set(r, cfg); err != nil {
			t.Fatal(err)
		}
		if p := r.Status().Pending; !hasPending(p, "ip addr add "+addr.String()+" dev eth0", "interface eth0 is absent") {
			t.Errorf("pending %+v", p)
		}
		rl.linkISP(t, isp)
		if err := rl.set(r, cfg); err != nil {
			t.Fatal(err)
		}
		// The lease still holds: its address and route are back at once.
		if a := rl.addrs(t, "eth0"); !strings.Contains(a, "inet "+addr.String()) || !hasLine(rl.routes(t), wanDefault) {
			t.Errorf("the Set after the NIC came back left eth0 with:\n%s\nand the routes:\n%s", a, rl.routes(t))
		}
		// A renewal on the socket bound to the new interface.
		if got := rl.bound(t, r, r.Status().Uplink.DHCP.Renewals+1).Address; got != addr {
			t.Errorf("renewed to %s, had %s", got, addr)
		}
	})
	t.Run("restart renews the same address", func(t *testing.T) {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		r = rl.open(parent)
		if err := rl.set(r, cfg); err != nil {
			t.Fatal(err)
		}
		if got := r.Status().Uplink.Address; got != addr {
			t.Errorf("after the restart the uplink holds %s, had %s", got, addr)
		}
		if got := rl.bound(t, r, 1).Address; got != addr {
			t.Errorf("confirmed %s after the restart, had %s", got, addr)
		}
		// The confirmed lease may refresh the address's lifetime; nothing
		// else changes.
		if n := r.Writes(); n > 1 {
			t.Errorf("the restart made %d kernel changes", n)
		}
	})
	t.Run("released", func(t *testing.T) {
		if err := rl.set(r, nil); err != nil {
			t.Fatal(err)
		}
		if a := rl.addrs(t, "eth0"); strings.Contains(a, addr.String()) {
			t.Errorf("after release eth0 has:\n%s", a)
		}
		if routes := rl.routes(t); strings.Contains(routes, "proto 177") {
			t.Errorf("after release:\n%s", routes)
		}
		lab.Eventually(t, 5*time.Second, func() error {
			if !strings.Contains(log(), "DHCPRELEASE(eth0) "+addr.Addr().String()) {
				return errors.New("dnsmasq saw no DHCPRELEASE")
			}
			return nil
		})
		if rec, err := loadRecord(rl.state); err != nil || rec.Lease != nil || len(rec.Addresses) != 0 {
			t.Errorf("record after release %+v (%v)", rec, err)
		}
	})
}

func hasPending(p []Pending, what, reason string) bool {
	return slices.ContainsFunc(p, func(p Pending) bool { return p.What == what && strings.Contains(p.Reason, reason) })
}
