package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// result lets a test take a (value, error) pair in one line:
// try(l.Namespace("a")).must(t).
type result[T any] struct {
	v   T
	err error
}

func try[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSwitchConnectsNamespaces(t *testing.T) {
	Require(t)
	l := New(t)
	sw := try(l.Switch("lan")).must(t)
	a := try(l.Namespace("a")).must(t)
	b := try(l.Namespace("b")).must(t)
	macA := try(l.Plug(sw, a, "eth0")).must(t)
	macB := try(l.Plug(sw, b, "eth0")).must(t)
	if len(macA) != 6 || bytes.Equal(macA, macB) {
		t.Fatalf("MACs %v and %v: want two distinct Ethernet addresses", macA, macB)
	}
	if err := a.Addr("eth0", "10.9.0.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := b.Addr("eth0", "10.9.0.2/24"); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 5*time.Second)
	if err := a.Ping(ctx, netip.MustParseAddr("10.9.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx, netip.MustParseAddr("10.9.0.1")); err != nil {
		t.Fatal(err)
	}
	// The kernel's own neighbour table must now name b's MAC: the ping
	// went over Ethernet through the bridge, not some shortcut.
	out := a.MustRun(t, "ip", "neigh", "show", "10.9.0.2", "dev", "eth0")
	if !strings.Contains(out, macB.String()) {
		t.Errorf("a's neighbour entry for 10.9.0.2 = %q, want MAC %s", out, macB)
	}
	if _, err := exec.LookPath("arping"); err == nil {
		out := a.MustRun(t, "arping", "-c", "1", "-w", "3", "-I", "eth0", "10.9.0.2")
		if !strings.Contains(strings.ToLower(out), macB.String()) {
			t.Errorf("arping output %q does not name %s", out, macB)
		}
	}
}

func TestLinkConnectsTwoNamespaces(t *testing.T) {
	Require(t)
	l := New(t)
	a := try(l.Namespace("a")).must(t)
	b := try(l.Namespace("b")).must(t)
	if err := l.Link(a, "up0", b, "down0"); err != nil {
		t.Fatal(err)
	}
	if err := a.Addr("up0", "fd00:9::1/64"); err != nil {
		t.Fatal(err)
	}
	if err := b.Addr("down0", "fd00:9::2/64"); err != nil {
		t.Fatal(err)
	}
	if err := a.Addr("up0", "10.8.0.1/30"); err != nil {
		t.Fatal(err)
	}
	if err := b.Addr("down0", "10.8.0.2/30"); err != nil {
		t.Fatal(err)
	}
	if err := a.Ping(ctxFor(t, 5*time.Second), netip.MustParseAddr("10.8.0.2")); err != nil {
		t.Fatal(err)
	}
	// IPv6 addresses are tentative until duplicate address detection ends.
	Eventually(t, 10*time.Second, func() error {
		return b.Ping(ctxFor(t, time.Second), netip.MustParseAddr("fd00:9::1"))
	})
	// A link-local address's zone names an interface inside the namespace.
	var lladdr netip.Addr
	h := try(a.Handle()).must(t)
	defer h.Close()
	link := try(h.LinkByName("up0")).must(t)
	for _, addr := range try(h.AddrList(link, netlink.FAMILY_V6)).must(t) {
		if ip, ok := netip.AddrFromSlice(addr.IP); ok && ip.IsLinkLocalUnicast() {
			lladdr = ip.WithZone("down0")
		}
	}
	if !lladdr.IsValid() {
		t.Fatal("up0 has no IPv6 link-local address")
	}
	Eventually(t, 10*time.Second, func() error {
		return b.Ping(ctxFor(t, time.Second), lladdr)
	})
}

// Nothing lab makes may ever show up in the host namespace.
func TestNothingAppearsOnTheHost(t *testing.T) {
	Require(t)
	l := New(t)
	sw := try(l.Switch("lan")).must(t)
	a := try(l.Namespace("a")).must(t)
	b := try(l.Namespace("b")).must(t)
	hostIf := l.Prefix() + "x" // unique per run, so any match is ours
	try(l.Plug(sw, a, hostIf)).must(t)
	if err := l.Link(a, "ab", b, "ba"); err != nil {
		t.Fatal(err)
	}
	var ours []net.HardwareAddr
	for _, ns := range []*Namespace{sw.NS, a, b} {
		h := try(ns.Handle()).must(t)
		for _, link := range try(h.LinkList()).must(t) {
			if len(link.Attrs().HardwareAddr) == 6 {
				ours = append(ours, link.Attrs().HardwareAddr)
			}
		}
		h.Close()
	}
	if len(ours) != 5 { // br0, the port, a's two ends, b's one
		t.Errorf("found %d Ethernet links in the lab, want 5", len(ours))
	}
	for _, link := range try(netlink.LinkList()).must(t) {
		attrs := link.Attrs()
		for _, mac := range ours {
			if bytes.Equal(attrs.HardwareAddr, mac) || attrs.Name == hostIf {
				t.Errorf("host namespace holds lab link %s (%s)", attrs.Name, attrs.HardwareAddr)
			}
		}
	}
}

func TestDoRunsInsideTheNamespace(t *testing.T) {
	Require(t)
	l := New(t)
	a := try(l.Namespace("a")).must(t)
	b := try(l.Namespace("b")).must(t)
	aIf, bIf := l.Prefix()+"a", l.Prefix()+"b"
	if err := l.Link(a, aIf, b, bIf); err != nil {
		t.Fatal(err)
	}
	for i := range 20 { // many rounds: a thread left behind in a would show on the host
		var names []string
		err := a.Do(func() error {
			links, err := netlink.LinkList()
			for _, link := range links {
				names = append(names, link.Attrs().Name)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		if want := []string{aIf, "lo"}; !slices.Equal(names, want) {
			t.Fatalf("round %d: links inside a = %v, want %v", i, names, want)
		}
		if _, err := netlink.LinkByName(aIf); err == nil {
			t.Fatalf("round %d: the host sees %s after Do", i, aIf)
		}
	}

	h := try(b.Handle()).must(t)
	defer h.Close()
	if _, err := h.LinkByName(bIf); err != nil {
		t.Errorf("b's handle does not see %s: %v", bIf, err)
	}
	if _, err := h.LinkByName(aIf); err == nil {
		t.Errorf("b's handle sees a's link %s", aIf)
	}
}

func TestDoCarriesErrorsAndPanics(t *testing.T) {
	Require(t)
	l := New(t)
	a := try(l.Namespace("a")).must(t)
	sentinel := errors.New("sentinel")
	if err := a.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want fn's panic", r)
			}
		}()
		_ = a.Do(func() error { panic("boom") })
		t.Error("Do did not re-raise fn's panic")
	}()
	if err := a.Do(func() error { runtime.Goexit(); return nil }); err == nil || !strings.Contains(err.Error(), "Goexit") {
		t.Errorf("Do with runtime.Goexit returned %v, want an error about it", err)
	}
	gone := &Namespace{Name: l.Prefix() + "-missing"}
	if err := gone.Do(func() error { return nil }); err == nil || !strings.Contains(err.Error(), gone.Name) {
		t.Errorf("Do in a missing namespace returned %v, want an error naming it", err)
	}
}

func TestSysctlStaysInTheNamespace(t *testing.T) {
	Require(t)
	l := New(t)
	a := try(l.Namespace("a")).must(t)
	const key, file = "net.ipv4.conf.all.promote_secondaries", "/proc/sys/net/ipv4/conf/all/promote_secondaries"
	host := try(os.ReadFile(file)).must(t)
	want := "1"
	if strings.TrimSpace(string(host)) == "1" {
		want = "0"
	}
	if err := a.Sysctl(key, want); err != nil {
		t.Fatal(err)
	}
	var inside []byte
	if err := a.Do(func() (err error) { inside, err = os.ReadFile(file); return err }); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(inside)); got != want {
		t.Errorf("%s inside = %s, want %s", key, got, want)
	}
	if after := try(os.ReadFile(file)).must(t); !bytes.Equal(after, host) {
		t.Errorf("host's %s changed from %q to %q", key, host, after)
	}
	if err := a.Sysctl("kernel.hostname", "x"); err == nil {
		t.Error("Sysctl accepted a key outside net.*")
	}
}

func TestCloseStopsProcessesAndDeletesNamespaces(t *testing.T) {
	Require(t)
	l := try(Open("")).must(t)
	t.Cleanup(func() { _ = Sweep(l.Prefix() + "-") })
	sw := try(l.Switch("lan")).must(t)
	a := try(l.Namespace("a")).must(t)
	try(l.Plug(sw, a, "eth0")).must(t)
	ctx := ctxFor(t, time.Minute)
	started := try(a.Start(ctx, "sleep", "1000")).must(t)
	// A daemon that forks away from its parent is found by its namespace.
	out := try(a.Run(ctx, "sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!")).must(t)
	forked := try(strconv.Atoi(strings.TrimSpace(out))).must(t)
	if !alive(forked) {
		t.Fatalf("forked sleep (pid %d) is not running", forked)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if list := try(exec.Command("ip", "netns", "list").Output()).must(t); strings.Contains(string(list), l.Prefix()) {
		t.Errorf("ip netns list after Close still shows %s:\n%s", l.Prefix(), list)
	}
	if err := started.Wait(); err == nil {
		t.Error("started sleep exited cleanly; want it killed by Close")
	}
	Eventually(t, 5*time.Second, func() error {
		if alive(forked) {
			return fmt.Errorf("forked sleep (pid %d) still running", forked)
		}
		return nil
	})
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Namespace("late"); err == nil {
		t.Error("Namespace after Close succeeded")
	}
	if _, err := a.Start(ctx, "true"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func TestStartKeepsOutput(t *testing.T) {
	Require(t)
	l := New(t)
	a := try(l.Namespace("a")).must(t)
	cmd := try(a.Start(ctxFor(t, time.Minute), "sh", "-c", "echo hello; echo oops >&2; sleep 1000")).must(t)
	Eventually(t, 5*time.Second, func() error {
		if out := l.Output(cmd); !strings.Contains(out, "hello") || !strings.Contains(out, "oops") {
			return fmt.Errorf("output so far %q", out)
		}
		return nil
	})
}

func TestRunErrorNamesCommandAndOutput(t *testing.T) {
	Require(t)
	l := New(t)
	a := try(l.Namespace("a")).must(t)
	_, err := a.Run(ctxFor(t, time.Minute), "sh", "-c", "echo went wrong >&2; exit 3")
	if err == nil {
		t.Fatal("Run of a failing command returned no error")
	}
	for _, want := range []string{"echo went wrong", a.Name, "exit status 3", "went wrong\n"} {
		if !strings.Contains(err.Error()+"\n", want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestOpenRefusesAPrefixInUseAndSweepClears(t *testing.T) {
	Require(t)
	l := try(Open("")).must(t)
	t.Cleanup(func() { _ = l.Close() })
	try(l.Namespace("a")).must(t)
	try(l.Switch("lan")).must(t)
	if _, err := Open(l.Prefix()); err == nil || !strings.Contains(err.Error(), "Sweep") {
		t.Errorf("Open of a prefix in use returned %v, want a refusal naming Sweep", err)
	}
	if err := Sweep(l.Prefix() + "-"); err != nil {
		t.Fatal(err)
	}
	if left := try(listNamespaces(l.Prefix())).must(t); len(left) > 0 {
		t.Errorf("after Sweep: %v", left)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after Sweep: %v", err)
	}
	if err := Sweep(""); err == nil {
		t.Error("Sweep of the empty prefix was accepted")
	}
}

func TestBadNamesAreRefused(t *testing.T) {
	Require(t)
	l := New(t)
	a := try(l.Namespace("a")).must(t)
	if _, err := l.Namespace("a"); err == nil {
		t.Error("a second namespace a was accepted")
	}
	for _, name := range []string{"", "a/b", "a b", ".."} {
		if _, err := l.Namespace(name); err == nil {
			t.Errorf("namespace name %q was accepted", name)
		}
	}
	sw := try(l.Switch("lan")).must(t)
	for _, ifname := range []string{"", "sixteen-bytes-xx", "eth0:1", "a/b", "a b"} {
		if _, err := l.Plug(sw, a, ifname); err == nil || !strings.Contains(err.Error(), strconv.Quote(ifname)) {
			t.Errorf("Plug with interface name %q returned %v, want an error naming it", ifname, err)
		}
	}
	if err := a.Addr("lo", "10.0.0.1"); err == nil {
		t.Error("Addr without a prefix length was accepted")
	}
	for _, p := range []string{"a-b", "x/y", "seventeen-chars-x"} {
		if _, err := Open(p); err == nil {
			t.Errorf("prefix %q was accepted", p)
		}
	}
}

// fakeTB records what Require's decision did instead of stopping the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func TestRequireDecision(t *testing.T) {
	tests := []struct {
		reason        string
		ci            bool
		skip, fail    bool
		mentionReason bool
	}{
		{reason: "", ci: false},
		{reason: "", ci: true},
		{reason: "network namespaces need root", ci: false, skip: true, mentionReason: true},
		{reason: "network namespaces need root", ci: true, fail: true, mentionReason: true},
	}
	for _, tt := range tests {
		f := &fakeTB{TB: t}
		decide(f, tt.reason, tt.ci)
		if f.skipped != tt.skip || f.failed != tt.fail {
			t.Errorf("decide(%q, ci=%v): skipped=%v failed=%v, want %v %v", tt.reason, tt.ci, f.skipped, f.failed, tt.skip, tt.fail)
		}
		if tt.mentionReason && !strings.Contains(f.msg, tt.reason) {
			t.Errorf("decide(%q, ci=%v) said %q, want the reason", tt.reason, tt.ci, f.msg)
		}
	}
}

func TestRequireReasons(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/x", nil }
	absent := func(name string) (string, error) {
		if name == "ip" {
			return "/usr/sbin/ip", nil
		}
		return "", exec.ErrNotFound
	}
	if got := missing(0, found, []string{"ip"}); got != "" {
		t.Errorf("root with ip: %q, want nothing missing", got)
	}
	if got := missing(1000, found, []string{"ip"}); !strings.Contains(got, "root") {
		t.Errorf("non-root: %q, want it to say root", got)
	}
	if got := missing(0, absent, []string{"ip", "dnsmasq", "udhcpc"}); !strings.Contains(got, "dnsmasq, udhcpc not installed") {
		t.Errorf("missing tools: %q, want them named", got)
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	Eventually(t, 5*time.Second, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := Poll(ctx, func() error { return errors.New("still broken") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still broken") {
		t.Errorf("Poll past its deadline returned %v, want the deadline and the last error", err)
	}
}
