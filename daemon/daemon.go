package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gatewayd/aliases"
	"gatewayd/config"
)

// Daemon is the running controller.
type Daemon struct {
	log   *slog.Logger
	level *slog.LevelVar
	sub   Subsystems
	// extraOps are control requests a part answers (leases, leases-import).
	extraOps map[string]func(json.RawMessage) (any, error)

	// applyMu serialises applies, drift repairs and Stop. Only its holder
	// changes cur.
	applyMu sync.Mutex
	// stopping ends with Stop: an apply still running gives up.
	stopping context.Context
	stopNow  context.CancelFunc

	mu      sync.Mutex  // guards what follows; held only briefly, so status answers during a long apply
	cur     *generation // nil until the first apply succeeded
	gen     int
	applied time.Time
	ctl     net.Listener

	// degraded is set when a failed reload could not return to the previous
	// config: status shows it and the next reload applies in full.
	degraded error
	stopped  bool
	repairs  map[string]*Repairs // by kind of drift
	confirm  *confirmation       // a reload waiting for `gatewayd confirm`

	facts     func(*config.Config) facts
	watching  sync.WaitGroup
	answering sync.WaitGroup // control requests being answered
	driftTick atomic.Int64   // when the drift loop last ran (Unix ns), for the watchdog
	// badRequests rate-limits the warnings about malformed control requests.
	badRequests logBudget
	started     time.Time

	web webState // the status page and metrics listener (web.go)
}

// generation is one config, the facts read from the kernel when it was
// applied, and the desired state computed from them once.
type generation struct {
	cfg   *config.Config
	facts facts
	want  *desired
}

func newGeneration(c *config.Config, f facts) *generation {
	return &generation{cfg: c, facts: f, want: desire(c, f)}
}

// config and desired read a generation that may be nil (nothing applied yet).
func (g *generation) config() *config.Config {
	if g == nil {
		return nil
	}
	return g.cfg
}

func (g *generation) desired() *desired {
	if g == nil {
		return nil
	}
	return g.want
}

// Options build a Daemon around its subsystems (Run opens the real ones).
type Options struct {
	Logger     *slog.Logger
	Level      *slog.LevelVar
	Subsystems Subsystems
	// Facts reads what desire needs from the kernel (readFacts for the
	// daemon); nil reads nothing.
	Facts func(*config.Config) facts
	// Metrics is the address ("127.0.0.1:9253") of the status page and
	// /metrics, [gateway] metrics; "" (the default) serves neither.
	Metrics string
	// WebNames are the box's own names the web listener answers to
	// besides its addresses and localhost (webNames).
	WebNames []string
}

// readFacts reads the kernel facts desire needs; nil facts (tests on
// fakes) read nothing. An address gatewayd owns is never one of the NIC's
// own, even when the new file no longer names it (it is about to go).
func (d *Daemon) readFacts(c *config.Config) facts {
	if d.facts == nil {
		return facts{}
	}
	f := d.facts(c)
	owned, err := d.sub.Aliases.Owned()
	if err == nil {
		f.Own = slices.DeleteFunc(f.Own, func(p netip.Prefix) bool { return slices.Contains(owned, p) })
	}
	return f
}

// New makes a controller that has applied nothing yet.
func New(o Options) *Daemon {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{log: o.Logger, level: o.Level, sub: o.Subsystems, extraOps: leaseOps(o.Subsystems.DHCP), facts: o.Facts,
		repairs: map[string]*Repairs{}, web: webState{addr: o.Metrics, names: o.WebNames}, badRequests: logBudget{period: 10 * time.Second}}
	d.stopping, d.stopNow = context.WithCancel(context.Background())
	d.started = time.Now()
	return d
}

// Version is the release the binary reports (cmd/gatewayd sets it), shown
// in status.
var Version = "dev"

// Start applies the first config, then serves the control socket ctl (made
// before, so a second daemon is refused before it writes anything) and
// starts watching for drift.
func (d *Daemon) Start(ctx context.Context, c *config.Config, ctl net.Listener) error {
	if _, err := d.Apply(ctx, c); err != nil {
		ctl.Close()
		return err
	}
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		ctl.Close()
		return errors.New("gatewayd is stopping")
	}
	d.ctl = ctl
	d.mu.Unlock()
	d.watching.Go(func() { d.serveControl(ctl) })
	d.watching.Go(func() { d.watchAddresses(d.stopping) })
	d.driftTick.Store(time.Now().UnixNano())
	d.watching.Go(func() { d.driftLoop(d.stopping) })
	if every := watchdogInterval(); every > 0 {
		d.watching.Go(func() { d.watchdog(d.stopping, every) })
	}
	return nil
}

// watchAddresses runs the aliases' own watch, which puts back addresses
// and follows the NIC, for the life of the daemon.
func (d *Daemon) watchAddresses(ctx context.Context) {
	for ctx.Err() == nil {
		if err := d.sub.Aliases.Watch(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("watching addresses", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Stop stops the roles and the control socket. A running apply gives up
// first. It leaves the aliases and the firewall in place, so a restart does
// not flap addresses and the box never fails open.
func (d *Daemon) Stop() error {
	d.stopNow()
	d.mu.Lock()
	d.stopped = true
	if d.ctl != nil {
		d.ctl.Close()
	}
	if d.confirm != nil {
		d.confirm.timer.Stop()
	}
	d.mu.Unlock()
	d.watching.Wait()
	d.answering.Wait()
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	return d.sub.Close()
}

func (d *Daemon) isStopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

// Reload validates config text and applies it; with confirm > 0 the daemon
// returns to the last confirmed config by itself after that long unless
// Confirm is called (see confirm.go). The running state is kept when the
// text is refused or the apply fails. A plain reload that succeeds also
// confirms a --confirm reload still waiting (as a plain commit does after
// JunOS's commit confirmed): the file now applied is the one wanted. The
// config's warnings are logged and returned apart from the changes.
func (d *Daemon) Reload(path string, text []byte, confirm time.Duration) (changes, warnings []string, err error) {
	defer func() { d.web.reloads.note(changes, err) }()
	c, err := config.Parse(path, text)
	if err != nil {
		return nil, nil, fmt.Errorf("config refused, nothing changed:\n%w", err)
	}
	warnings = logWarnings(d.log, c)
	if confirm != 0 {
		if confirm < minConfirm || confirm > maxConfirm {
			return nil, warnings, fmt.Errorf("--confirm takes %s to %s, not %s; nothing changed", minConfirm, maxConfirm, confirm)
		}
		changes, err = d.applyConfirmed(c, confirm)
		return changes, warnings, err
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	changes, err = d.apply(context.Background(), c)
	if err == nil {
		_ = d.confirmLocked("confirmed by a plain reload")
	}
	return changes, warnings, err
}

// logWarnings logs the config's warnings and returns them as text.
func logWarnings(log *slog.Logger, c *config.Config) []string {
	out := warningLines(c)
	for _, w := range out {
		log.Warn("config", "warning", w)
	}
	return out
}

// warningLines are the config's warnings as text.
func warningLines(c *config.Config) []string {
	var out []string
	for _, w := range c.Warnings {
		out = append(out, w.String())
	}
	return out
}

// PlanText validates config text and says what applying it would change,
// with the config's warnings apart.
func (d *Daemon) PlanText(path string, text []byte) (steps, warnings []string, err error) {
	c, err := config.Parse(path, text)
	if err != nil {
		return nil, nil, err
	}
	warnings = warningLines(c)
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if err := d.checkImmutable(c); err != nil {
		return nil, warnings, err
	}
	p, err := d.plan(d.cur, newGeneration(c, d.readFacts(c)))
	return p.lines(), warnings, err
}

// checkImmutable refuses changes that only a restart can make.
func (d *Daemon) checkImmutable(next *config.Config) error {
	prev := d.cur.config()
	if prev == nil {
		return nil
	}
	for _, f := range []struct{ key, old, new string }{
		{"gateway.interface", prev.Gateway.Interface, next.Gateway.Interface},
		{"gateway.state_dir", prev.Gateway.StateDir, next.Gateway.StateDir},
		{"gateway.control_socket", prev.Gateway.ControlSocket, next.Gateway.ControlSocket},
		{"gateway.log_format", prev.Gateway.LogFormat, next.Gateway.LogFormat},
		{"gateway.metrics", prev.Gateway.Metrics.String(), next.Gateway.Metrics.String()},
	} {
		if f.old != f.new {
			return fmt.Errorf("%s changed from %q to %q: that needs a restart (systemctl restart gatewayd@%s), nothing changed", f.key, f.old, f.new, prev.Gateway.Interface)
		}
	}
	return nil
}

// union is next's aliases plus prev's that next does not have (by address):
// the set held while roles move, so nothing is removed before its role stopped.
func union(prev, next []aliases.Alias) []aliases.Alias {
	out := append([]aliases.Alias(nil), next...)
	have := map[netip.Addr]bool{}
	for _, a := range next {
		have[a.Prefix.Addr()] = true
	}
	for _, a := range prev {
		if !have[a.Prefix.Addr()] {
			out = append(out, a)
		}
	}
	return out
}
