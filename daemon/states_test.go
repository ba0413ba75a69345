package daemon

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatewayd/config"
	"gatewayd/roles/router"
)

// statesSite is a one-wire site for the controller's transitions; each
// variant below edits it.
const statesSite = `
[gateway]
interface = "eth1"
host = "gw1"
state_dir = "/var/lib/gatewayd"

[[alias]]
name = "router"
address = "192.0.2.1/24"
label = "eth1:0"

[[alias]]
name = "dns"
address = "192.0.2.3/24"
label = "eth1:1"
{{dns host}}
{{more aliases}}
[router]
alias = "router"
upstream = "192.0.2.254"

[dns]
alias = "dns"
{{more roles}}
[zone.lan]
subnets = ["192.0.2.0/24"]
allow = ["dns", "ssh"{{more services}}]
`

// statesConfig parses statesText.
func statesConfig(t *testing.T, dnsHost string, lab, dhcp bool) *config.Config {
	t.Helper()
	text := statesText(dnsHost, lab, dhcp)
	c, err := config.Parse("gateway.toml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return c
}

// statesText fills the site's placeholders.
func statesText(dnsHost string, lab, dhcp bool) string {
	r := strings.NewReplacer("{{dns host}}", "", "{{more aliases}}", "", "{{more roles}}", "", "{{more services}}", "")
	repl := []string{}
	if dnsHost != "" {
		repl = append(repl, "{{dns host}}", `host = "`+dnsHost+`"`)
	}
	var more string
	if lab {
		more += "[[alias]]\nname = \"lab\"\naddress = \"10.0.0.1/24\"\nlabel = \"eth1:2\"\n"
	}
	if dhcp {
		more += "[[alias]]\nname = \"dhcp\"\naddress = \"192.0.2.2/24\"\nlabel = \"eth1:3\"\n"
		repl = append(repl, "{{more roles}}", "[dhcp]\nalias = \"dhcp\"\n[[dhcp.pool]]\nrange = \"192.0.2.100-192.0.2.199\"\n",
			"{{more services}}", `, "dhcp"`)
	}
	repl = append(repl, "{{more aliases}}", more)
	return r.Replace(strings.NewReplacer(repl...).Replace(statesSite))
}

// TestControllerStates drives the controller through a sequence of configs
// against fake subsystems and compares, step by step, every change the
// subsystems were asked to make.
func TestControllerStates(t *testing.T) {
	os := newFakeOS()
	d := New(Options{Subsystems: os.subsystems()})
	ctx := context.Background()
	apply := func(c *config.Config) error {
		_, err := d.Apply(ctx, c)
		return err
	}
	type step struct {
		name    string
		cfg     *config.Config
		before  func()
		wantErr string // "" means success
		want    string
	}
	base := statesConfig(t, "", false, false)
	for _, s := range []step{
		{name: "first start", cfg: base, want: `
aliases: probe 192.0.2.1
aliases: probe 192.0.2.3
firewall: set aliases=router,dns zones=lan
aliases: ip addr add 192.0.2.1/24 dev eth1 label eth1:0
aliases: ip addr add 192.0.2.3/24 dev eth1 label eth1:1
router: start eth1
dns: start 192.0.2.3
aliases: announce [192.0.2.1 192.0.2.3]`},
		{name: "no-op reload", cfg: statesConfig(t, "", false, false), want: ``},
		{name: "alias added", cfg: statesConfig(t, "", true, false), want: `
aliases: probe 10.0.0.1
firewall: set aliases=router,dns,lab zones=lan,auto-lab
aliases: ip addr add 10.0.0.1/24 dev eth1 label eth1:2
dns: update 192.0.2.3 (clients, hosts, reverse zones)
aliases: announce [10.0.0.1]`},
		{name: "alias removed", cfg: base, want: `
firewall: set aliases=router,dns zones=lan
dns: update 192.0.2.3 (clients, hosts, reverse zones)
aliases: ip addr del 10.0.0.1/24 dev eth1`},
		{name: "role moved away", cfg: statesConfig(t, "gw2", false, false), want: `
dns: stop
aliases: ip addr del 192.0.2.3/24 dev eth1
firewall: set aliases=router zones=lan`},
		{name: "claim refused while the old host still answers", cfg: base,
			before:  func() { os.holders[netip.MustParseAddr("192.0.2.3")] = net.HardwareAddr{2, 0, 0, 0, 0, 2} },
			wantErr: "address 192.0.2.3 (alias dns) is still held by 02:00:00:00:00:02", want: `
aliases: probe 192.0.2.3`},
		{name: "role claimed back", cfg: base,
			before: func() { delete(os.holders, netip.MustParseAddr("192.0.2.3")) }, want: `
aliases: probe 192.0.2.3
firewall: set aliases=router,dns zones=lan
aliases: ip addr add 192.0.2.3/24 dev eth1 label eth1:1
dns: start 192.0.2.3
aliases: announce [192.0.2.3]`},
		{name: "a failed role start rolls back", cfg: statesConfig(t, "", false, true),
			before:  func() { os.fail["dhcp: start"] = 1 },
			wantErr: "dhcp role: dhcp: start: injected failure; the previous config is running again", want: `
aliases: probe 192.0.2.2
firewall: set aliases=router,dns,dhcp zones=lan
aliases: ip addr add 192.0.2.2/24 dev eth1 label eth1:3
dns: update 192.0.2.3 (clients, hosts)
dhcp: start 192.0.2.2 FAILED
firewall: set aliases=router,dns zones=lan
dns: update 192.0.2.3 (clients, hosts)
aliases: ip addr del 192.0.2.2/24 dev eth1`},
		{name: "a failed rollback reports degraded", cfg: statesConfig(t, "", false, true),
			before: func() {
				os.fail["dhcp: start"] = 1
				os.fail["firewall: set aliases=router,dns zones"] = 1
			},
			wantErr: "returning to the previous config also failed", want: `
aliases: probe 192.0.2.2
firewall: set aliases=router,dns,dhcp zones=lan
aliases: ip addr add 192.0.2.2/24 dev eth1 label eth1:3
dns: update 192.0.2.3 (clients, hosts)
dhcp: start 192.0.2.2 FAILED
firewall: set aliases=router,dns zones=lan FAILED`},
		// The address the failed apply added is neither the running nor the
		// next generation's: it goes with the first alias step.
		{name: "the next reload after degraded applies in full", cfg: base, want: `
firewall: set aliases=router,dns zones=lan
aliases: ip addr del 192.0.2.2/24 dev eth1
dns: update 192.0.2.3 (clients, hosts)`},
	} {
		if s.before != nil {
			s.before()
		}
		err := apply(s.cfg)
		switch {
		case s.wantErr == "" && err != nil:
			t.Errorf("%s: %v", s.name, err)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", s.name, err, s.wantErr)
		}
		if got, want := os.take(), strings.TrimPrefix(s.want, "\n"); got != want {
			t.Errorf("%s: the subsystems were asked for\n%s\n\nwant\n%s", s.name, got, want)
		}
		degraded := d.Status().Degraded != ""
		if want := s.name == "a failed rollback reports degraded"; degraded != want {
			t.Errorf("%s: degraded = %v, want %v", s.name, degraded, want)
		}
	}
}

// TestDriftRepair: what someone else changes is put back by the drift loop's
// repair, counted per kind, and a reload of the same file says it repaired.
func TestDriftRepair(t *testing.T) {
	os := newFakeOS()
	sub := os.subsystems()
	d := New(Options{Subsystems: sub})
	ctx := context.Background()
	base := statesConfig(t, "", false, false)
	if _, err := d.Apply(ctx, base); err != nil {
		t.Fatal(err)
	}
	os.take()
	now := time.Now()
	d.repair(ctx, now)
	if got := os.take(); got != "" {
		t.Errorf("a repair with nothing drifted asked for\n%s", got)
	}

	// Someone flushes the ruleset.
	sub.Firewall.(*fakeFirewall).applied = nil
	d.repair(ctx, now)
	if got := os.take(); got != "firewall: set aliases=router,dns zones=lan" {
		t.Errorf("repair after a flush asked for %q", got)
	}
	if r := d.Status().Repairs[driftFirewall]; r.Restores != 1 || r.Failing != "" {
		t.Errorf("firewall repairs %+v, want one restore", r)
	}

	// A reload of the unchanged file after drift says what it repaired.
	sub.Firewall.(*fakeFirewall).applied = nil
	steps, err := d.Apply(ctx, base)
	if err != nil || len(steps) != 1 || !strings.Contains(steps[0], "repaired the firewall table") {
		t.Errorf("reload after drift: %q, %v", steps, err)
	}
	os.take()

	// Something that keeps undoing the table spends the budget: degraded.
	for i := range repairBudget + 2 {
		sub.Firewall.(*fakeFirewall).applied = nil
		d.repair(ctx, now.Add(time.Duration(i)*time.Millisecond))
	}
	os.take()
	if st := d.Status(); !strings.Contains(st.Degraded, "keeps changing it") {
		t.Errorf("degraded %q after %d undone repairs", st.Degraded, repairBudget+2)
	}
	// A minute later the budget is back.
	sub.Firewall.(*fakeFirewall).applied = nil
	d.repair(ctx, now.Add(2*time.Minute))
	if got := os.take(); got == "" {
		t.Error("no repair after the budget's minute")
	}

	// A repair that keeps failing is reported.
	os.fail["firewall: set"] = -1
	for range repairFailures {
		sub.Firewall.(*fakeFirewall).applied = nil
		d.repair(ctx, now.Add(3*time.Minute))
	}
	if st := d.Status(); !strings.Contains(st.Degraded, "injected failure") {
		t.Errorf("degraded %q after failing repairs", st.Degraded)
	}
}

// TestReloadConfirm: a --confirm reload returns to the previous config by
// itself unless confirmed; confirmed, it stays.
func TestReloadConfirm(t *testing.T) {
	os := newFakeOS()
	d := New(Options{Subsystems: os.subsystems()})
	ctx := context.Background()
	if _, err := d.Apply(ctx, statesConfig(t, "", false, false)); err != nil {
		t.Fatal(err)
	}
	os.take()
	withLab := []byte(statesText("", true, false))
	if _, _, err := d.Reload("gateway.toml", withLab, time.Millisecond); err == nil || !strings.Contains(err.Error(), "--confirm takes") {
		t.Errorf("reload --confirm 1ms: %v, want it refused", err)
	}
	// Below the CLI's bound, so the test need not wait a second.
	steps, err := d.applyConfirmed(statesConfig(t, "", true, false), 30*time.Millisecond)
	if err != nil || !strings.Contains(strings.Join(steps, "\n"), "gatewayd confirm") {
		t.Fatalf("reload --confirm: %q %v", steps, err)
	}
	if d.Status().Confirm == nil {
		t.Error("status does not show the pending confirmation")
	}
	waitFor(t, func() bool { return strings.Contains(os.peek(), "ip addr del 10.0.0.1/24") })
	if d.Status().Confirm != nil || d.cur.config().Alias("lab") != nil {
		t.Error("after the timeout the previous config is not running")
	}
	os.take()

	// Confirmed in time, it stays.
	if _, _, err := d.Reload("gateway.toml", withLab, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := d.Confirm(); err != nil {
		t.Fatal(err)
	}
	if err := d.Confirm(); err == nil {
		t.Error("a second confirm finds nothing to confirm, and says so")
	}
	if d.cur.config().Alias("lab") == nil || d.Status().Confirm != nil {
		t.Error("a confirmed reload did not stay")
	}
}

// TestStatusDuringApply: status answers while an apply is busy.
func TestStatusDuringApply(t *testing.T) {
	os := newFakeOS()
	release := make(chan struct{})
	os.block = map[string]chan struct{}{"dns: start": release}
	d := New(Options{Subsystems: os.subsystems()})
	done := make(chan error, 1)
	go func() { _, err := d.Apply(context.Background(), statesConfig(t, "", false, false)); done <- err }()
	waitFor(t, func() bool { return strings.Contains(os.peek(), "router: start") })
	st := make(chan Status, 1)
	go func() { st <- d.Status() }()
	select {
	case <-st:
	case err := <-done:
		t.Fatalf("the apply ended (%v) before the test released it", err)
	case <-time.After(10 * time.Second):
		t.Fatal("status blocked behind the apply")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 10 s")
}

// TestFailedStartCleansUp: a first apply that fails removes what it added
// but the firewall, and says so.
func TestFailedStartCleansUp(t *testing.T) {
	os := newFakeOS()
	os.fail["dns: start"] = 1
	d := New(Options{Subsystems: os.subsystems()})
	_, err := d.Apply(context.Background(), statesConfig(t, "", false, false))
	if err == nil || !strings.Contains(err.Error(), "the firewall stays in place, closed") {
		t.Fatalf("failed start: %v", err)
	}
	want := `aliases: probe 192.0.2.1
aliases: probe 192.0.2.3
firewall: set aliases=router,dns zones=lan
aliases: ip addr add 192.0.2.1/24 dev eth1 label eth1:0
aliases: ip addr add 192.0.2.3/24 dev eth1 label eth1:1
router: start eth1
dns: start 192.0.2.3 FAILED
aliases: ip addr del 192.0.2.1/24 dev eth1
aliases: ip addr del 192.0.2.3/24 dev eth1
router: stop`
	if got := os.take(); got != want {
		t.Errorf("a failed start asked for\n%s\n\nwant\n%s", got, want)
	}
}

// TestFailedReloadDisownsWhatItAdopted: a reload that adopts an address
// (adopt = true) and then fails leaves the address someone else's, on the
// NIC, as it found it.
func TestFailedReloadDisownsWhatItAdopted(t *testing.T) {
	os := newFakeOS()
	sub := os.subsystems()
	d := New(Options{Subsystems: sub})
	ctx := context.Background()
	if _, err := d.Apply(ctx, statesConfig(t, "", false, false)); err != nil {
		t.Fatal(err)
	}
	nic := sub.Aliases.(*fakeNIC)
	nic.foreign[netip.MustParsePrefix("192.0.2.2/24")] = "eth1:3"
	os.take()
	text := strings.Replace(statesText("", false, true), "label = \"eth1:3\"\n", "label = \"eth1:3\"\nadopt = true\n", 1)
	c, err := config.Parse("gateway.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	os.fail["dhcp: start"] = 1
	if _, err := d.Apply(ctx, c); err == nil {
		t.Fatal("the reload did not fail")
	}
	calls := os.take()
	if !strings.Contains(calls, "aliases: adopt dhcp (192.0.2.2/24)") || !strings.Contains(calls, "aliases: disown dhcp (192.0.2.2/24)") ||
		strings.Contains(calls, "ip addr del 192.0.2.2/24") {
		t.Errorf("a failed reload after an adopt asked for\n%s", calls)
	}
	if nic.foreign[netip.MustParsePrefix("192.0.2.2/24")] != "eth1:3" {
		t.Error("the adopted address is not someone else's again")
	}
}

// TestDegradedRepairsOnlyTheFirewall: after a reload that could not return
// to the previous config, the drift loop keeps the closed firewall but does
// not push the roles of a generation the box no longer holds.
func TestDegradedRepairsOnlyTheFirewall(t *testing.T) {
	os := newFakeOS()
	sub := os.subsystems()
	d := New(Options{Subsystems: sub})
	ctx := context.Background()
	if _, err := d.Apply(ctx, statesConfig(t, "", false, false)); err != nil {
		t.Fatal(err)
	}
	os.fail["dhcp: start"] = 1
	os.fail["firewall: set aliases=router,dns zones"] = 1
	if _, err := d.Apply(ctx, statesConfig(t, "", false, true)); err == nil {
		t.Fatal("the reload did not fail")
	}
	os.take()
	sub.Router.(*fakeRole[router.Config]).cur = nil // the router was released meanwhile
	sub.Firewall.(*fakeFirewall).applied = nil
	d.repair(ctx, time.Now())
	if got := os.take(); got != "firewall: set aliases=router,dns zones=lan" {
		t.Errorf("a degraded daemon's repair asked for %q, want the firewall only", got)
	}
}

// TestFailedStartKeepsAPreviousRunsRouter: a previous run's forwarding,
// with no route of its own, is not turned off by a failed start.
func TestFailedStartKeepsAPreviousRunsRouter(t *testing.T) {
	os := newFakeOS()
	sub := os.subsystems()
	sub.Router.(*fakeRole[router.Config]).held = true
	os.fail["dns: start"] = 1
	d := New(Options{Subsystems: sub})
	_, err := d.Apply(context.Background(), statesConfig(t, "", false, false))
	if err == nil || !strings.Contains(err.Error(), "kept the router's routes and sysctls of the previous run") {
		t.Fatalf("failed start: %v", err)
	}
	if calls := os.take(); strings.Contains(calls, "router: stop") {
		t.Errorf("a failed start released a previous run's router:\n%s", calls)
	}
}
