package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
)

// The drift loop: everything gatewayd owns in the kernel is put back when
// someone else changes it. Every subsystem's Set is idempotent and writes
// only what differs from its desired value, so a repair is simply Set with
// the running generation's value again; the loop runs it on every netlink
// event about routes and links, on every change to the nftables table
// (when the firewall reports them), and once a second for what has no event
// (sysctls). Addresses are the aliases' own watch, which reports its
// restores alike.

// Kinds of drift, as status names them.
const (
	driftFirewall = "firewall"
	driftRouter   = "routes and sysctls"
	driftDHCP     = "dhcp"
)

// repairBudget is how many repairs of one kind a minute may bring; past it
// the kind is left as it is and reported degraded until the minute is over:
// something keeps undoing gatewayd's work, and fighting it would only flap.
const repairBudget = 10

// repairFailures is how many repairs in a row may fail before the kind is
// reported degraded.
const repairFailures = 3

// Repairs is what the drift loop did about one kind.
type Repairs struct {
	Restores    int       `json:"restores"`
	LastRestore time.Time `json:"last_restore,omitzero"`
	// Failing says why repairs of this kind do not hold: the last error of
	// several in a row, or a budget spent.
	Failing string `json:"failing,omitempty"`

	fails  int
	recent []time.Time // restores within the last minute
}

// writeCount is the kernel writes each subsystem has made so far.
type writeCount struct{ aliases, firewall, router uint64 }

func (d *Daemon) writes() writeCount {
	return writeCount{d.sub.Aliases.Writes(), d.sub.Firewall.Batches(), d.sub.Router.Writes()}
}

// since names what was written after w, for `reload` to say what it repaired.
func (w writeCount) since(before writeCount) []string {
	var out []string
	for _, c := range []struct {
		what  string
		delta uint64
	}{
		{"addresses", w.aliases - before.aliases},
		{"the firewall table", w.firewall - before.firewall},
		{"routes and sysctls", w.router - before.router},
	} {
		if c.delta > 0 {
			out = append(out, fmt.Sprintf("repaired %s: %d kernel writes put back what someone else had changed", c.what, c.delta))
		}
	}
	return out
}

// driftLoop repairs drift until ctx ends.
func (d *Daemon) driftLoop(ctx context.Context) {
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	d.watching.Go(func() { d.routeEvents(ctx, poke) })
	d.watching.Go(func() { d.tableEvents(ctx, poke) })
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-kick:
			// Let a burst of events (a flush removes many routes) settle.
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		now := time.Now()
		d.driftTick.Store(now.UnixNano())
		d.repair(ctx, now)
	}
}

// routeEvents pokes on every route and link change, resubscribing when the
// kernel drops a subscription (netlink closes it on a receive error).
func (d *Daemon) routeEvents(ctx context.Context, poke func()) {
	for ctx.Err() == nil {
		done := make(chan struct{})
		routes := make(chan netlink.RouteUpdate, 64)
		links := make(chan netlink.LinkUpdate, 64)
		errs := func(error) { poke() }
		if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: errs}); err != nil {
			d.log.Warn("subscribing to route changes; repairs fall back to once a second", "err", err)
		}
		if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{ErrorCallback: errs}); err != nil {
			d.log.Warn("subscribing to link changes; repairs fall back to once a second", "err", err)
		}
		watchEvents(ctx, routes, links, poke)
		close(done)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// tableEvents pokes whenever the firewall sees table inet gatewayd changed
// by someone else, watching again after an error.
func (d *Daemon) tableEvents(ctx context.Context, poke func()) {
	for ctx.Err() == nil {
		if err := d.sub.Firewall.Watch(ctx, poke); err != nil && ctx.Err() == nil {
			d.log.Warn("watching nftables; repairs fall back to once a second", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// watchEvents pokes for each event until ctx ends or a subscription closes.
func watchEvents(ctx context.Context, routes <-chan netlink.RouteUpdate, links <-chan netlink.LinkUpdate, poke func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-routes:
			if !ok {
				return
			}
		case _, ok := <-links:
			if !ok {
				return
			}
		}
		poke()
	}
}

// repair gives every kernel-owning subsystem the running generation's value
// again. While an apply runs it does nothing: the apply converges anyway.
func (d *Daemon) repair(ctx context.Context, now time.Time) {
	if !d.applyMu.TryLock() {
		return
	}
	defer d.applyMu.Unlock()
	g := d.cur
	d.mu.Lock()
	degraded := d.degraded != nil
	d.mu.Unlock()
	if g == nil || d.isStopped() {
		return
	}
	d.repairOne(driftFirewall, now, d.sub.Firewall.Batches, func() error { return d.sub.Firewall.Set(g.want.Firewall) })
	if degraded {
		// After a failed reload that could not return to the previous
		// config, that config is not what the box should hold either (an
		// address it names may be another box's by now): only the closed
		// firewall is kept, until the next reload applies in full.
		return
	}
	d.repairOne(driftRouter, now, d.sub.Router.Writes, func() error { return d.sub.Router.Set(ctx, g.want.Router) })
	d.repairOne(driftDHCP, now, d.sub.DHCP.Reopens, func() error { return d.sub.DHCP.Set(ctx, g.want.DHCP) })
}

// repairOne runs set for one kind within its budget, and records whether it
// had to write (a restore) or failed.
func (d *Daemon) repairOne(kind string, now time.Time, writes func() uint64, set func() error) {
	d.mu.Lock()
	r := d.repairs[kind]
	if r == nil {
		r = &Repairs{}
		d.repairs[kind] = r
	}
	for len(r.recent) > 0 && now.Sub(r.recent[0]) >= time.Minute {
		r.recent = r.recent[1:]
	}
	spent := len(r.recent) >= repairBudget
	d.mu.Unlock()
	if spent {
		return
	}
	var before uint64
	if writes != nil {
		before = writes()
	}
	err := set()
	restored := writes != nil && writes() != before
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err != nil:
		r.fails++
		if r.fails == repairFailures {
			d.log.Error("repair keeps failing", "kind", kind, "err", err)
		}
		if r.fails >= repairFailures {
			r.Failing = err.Error()
		}
	case restored:
		r.fails = 0
		r.Restores++
		r.LastRestore = now
		r.recent = append(r.recent, now)
		r.Failing = ""
		if len(r.recent) == repairBudget {
			r.Failing = fmt.Sprintf("put back %d times within a minute: something keeps changing it; left alone until the minute is over", repairBudget)
			d.log.Error("repairs keep being undone", "kind", kind, "restores", len(r.recent))
		} else if len(r.recent) <= 3 {
			d.log.Warn("put back what someone else changed", "kind", kind)
		}
	default:
		r.fails = 0
		if len(r.recent) < repairBudget {
			r.Failing = ""
		}
	}
}

// driftAddresses is the kind status names the aliases' own repairs by.
const driftAddresses = "addresses"

// repairStatus copies the drift loop's record for status, with the
// aliases' restores. The caller holds d.mu.
func (d *Daemon) repairStatus() map[string]Repairs {
	out := map[string]Repairs{}
	for k, r := range d.repairs {
		out[k] = Repairs{Restores: r.Restores, LastRestore: r.LastRestore, Failing: r.Failing}
	}
	if n, last := d.sub.Aliases.Restores(); n > 0 {
		out[driftAddresses] = Repairs{Restores: n, LastRestore: last}
	}
	return out
}
