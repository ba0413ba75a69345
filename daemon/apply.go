package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"gatewayd/aliases"
	"gatewayd/config"
)

// Apply makes this box match c: the aliases it holds, the firewall and the roles.
// It returns the steps carried out. On failure it returns to the previous
// generation and says what failed; the running generation changes only when
// everything succeeded. An unchanged config still runs every subsystem's
// idempotent Set, which writes nothing unless the kernel drifted (a flushed
// ruleset, say), and then repairs it.
func (d *Daemon) Apply(ctx context.Context, c *config.Config) ([]string, error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	return d.apply(ctx, c)
}

// apply is Apply with applyMu held. It gives up when the daemon stops.
func (d *Daemon) apply(ctx context.Context, c *config.Config) (steps []string, err error) {
	if d.isStopped() {
		return nil, errors.New("gatewayd is stopping")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.stopping, cancel)()
	if err := d.checkImmutable(c); err != nil {
		return nil, err
	}
	prev, next := d.cur, newGeneration(c, d.readFacts(c))
	// An apply that fails leaves what it adopted someone else's, as it
	// found it, before any way back runs, so that is never removed.
	var adopted []aliases.Alias
	disown := func() error {
		list := adopted
		adopted = nil
		if len(list) == 0 {
			return nil
		}
		return d.sub.Aliases.Disown(list)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, disown())
		}
	}()
	if len(next.want.Adopt) > 0 {
		var aerr error
		adopted, aerr = d.sub.Aliases.Adopt(next.want.Adopt)
		if aerr != nil && !errors.Is(aerr, aliases.ErrNoLink) {
			return nil, aerr
		}
		if len(adopted) > 0 {
			d.log.Info("took over addresses already on the NIC (adopt = true)", "aliases", fmt.Sprint(adopted))
		}
	}
	p, err := d.plan(prev, next)
	if err != nil {
		return nil, err
	}
	if err := p.conflictErr(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	unchanged := prev != nil && prev.want.sameParts(next.want) && d.degraded == nil
	d.mu.Unlock()
	if prev != nil && !unchanged {
		_ = notify(reloadingState())
		defer notify("READY=1")
	}
	if err := d.claim(ctx, prev, next); err != nil {
		return nil, err
	}
	d.sub.Aliases.SetAnnounce(next.want.Settings.Announce)
	var found startState
	if prev == nil {
		found = d.foundAtStart()
	}
	before := d.writes()
	if err := d.transition(ctx, prev, next, union(prev.desired().aliasesOrNil(), next.want.Aliases)); err != nil {
		err = errors.Join(err, disown())
		if prev == nil {
			return nil, d.failedStart(ctx, next, found, err)
		}
		if d.stopping.Err() != nil {
			d.setDegraded(fmt.Errorf("a reload was interrupted by the daemon stopping (%w); the next start applies the file in full", err))
			return nil, fmt.Errorf("interrupted: gatewayd is stopping: %w", err)
		}
		d.log.Error("apply failed, returning to the previous config", "err", err)
		d.sub.Aliases.SetAnnounce(prev.want.Settings.Announce)
		if rerr := d.rollback(ctx, next, prev); rerr != nil {
			err := fmt.Errorf("a reload failed (%w) and returning to the previous config also failed (%w)", err, rerr)
			d.setDegraded(err)
			return nil, err
		}
		return nil, fmt.Errorf("%w; the previous config is running again", err)
	}
	d.setDegraded(nil)
	if unchanged {
		// The same desired state, perhaps from another file: SIGHUP and
		// status follow the file last applied.
		d.mu.Lock()
		d.cur = next
		d.mu.Unlock()
		if repaired := d.writes().since(before); len(repaired) > 0 {
			d.log.Warn("reload: nothing changed in the file, but the kernel had drifted and was put back", "repaired", repaired)
			return repaired, nil
		}
		d.log.Info("reload: no changes")
		return nil, nil
	}
	d.mu.Lock()
	d.cur, d.gen, d.applied = next, d.gen+1, time.Now()
	d.mu.Unlock()
	if d.level != nil {
		var lv slog.Level
		if lv.UnmarshalText([]byte(next.want.Settings.LogLevel)) == nil {
			d.level.Set(lv)
		}
	}
	steps = p.lines()
	d.log.Info("applied", "generation", d.gen, "steps", len(steps))
	for _, s := range steps {
		d.log.Debug("applied", "step", s)
	}
	return steps, nil
}

func (w *desired) aliasesOrNil() []aliases.Alias {
	if w == nil {
		return nil
	}
	return w.Aliases
}

// transition moves from one generation to another: the firewall for both the
// kept and the new aliases first, then the aliases of bridge (the new ones
// come up without their policy missing), then the roles (each starts new
// listeners before closing old ones); only then are the new addresses
// announced, the aliases no longer held removed, and finally their firewall
// rules.
func (d *Daemon) transition(ctx context.Context, from, to *generation, bridge []aliases.Alias) error {
	during := releasing(from.config(), to.cfg, to.facts)
	first := to.want.Firewall
	if during != nil {
		first = during
	}
	if err := d.sub.Firewall.Set(first); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	res, err := d.sub.Aliases.SetQuiet(ctx, bridge)
	if err != nil {
		return fmt.Errorf("aliases: %w", err)
	}
	if err := conflictErr(res.Conflicts); err != nil {
		return err
	}
	if err := d.setRoles(ctx, to.want); err != nil {
		return err
	}
	var added []netip.Addr
	for _, s := range res.Done {
		if s.Op == aliases.OpAdd || s.Op == aliases.OpRelabel {
			added = append(added, s.Alias.Prefix.Addr())
		}
	}
	if len(added) > 0 {
		if err := d.sub.Aliases.Announce(added...); err != nil {
			d.log.Warn("gratuitous ARP failed", "err", err)
		}
	}
	if _, err := d.sub.Aliases.SetQuiet(ctx, to.want.Aliases); err != nil {
		return fmt.Errorf("aliases: %w", err)
	}
	if during != nil {
		if err := d.sub.Firewall.Set(to.want.Firewall); err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
	}
	return nil
}

// setRoles gives each role its value, in apply order.
func (d *Daemon) setRoles(ctx context.Context, w *desired) error {
	if err := d.sub.Router.Set(ctx, w.Router); err != nil {
		return fmt.Errorf("router role: %w", err)
	}
	if err := d.sub.DNS.Set(ctx, w.DNS); err != nil {
		return fmt.Errorf("dns role: %w", err)
	}
	if err := d.sub.DHCP.Set(ctx, w.DHCP); err != nil {
		return fmt.Errorf("dhcp role: %w", err)
	}
	return nil
}

// rollback returns from a failed apply of failed to prev. Addresses prev held
// that the failed apply released are taken back only after a probe finds
// them free: another box may have claimed them meanwhile. Addresses failed
// would have claimed are kept during the way back only if they are on the NIC.
func (d *Daemon) rollback(ctx context.Context, failed, prev *generation) error {
	if err := d.probe(ctx, prev, nil); err != nil {
		return fmt.Errorf("not taking addresses back: %w", err)
	}
	owned, err := d.sub.Aliases.Owned()
	if err != nil {
		return fmt.Errorf("aliases: %w", err)
	}
	on := map[netip.Prefix]bool{}
	for _, p := range owned {
		on[p] = true
	}
	var kept []aliases.Alias
	for _, a := range failed.want.Aliases {
		if on[a.Prefix] {
			kept = append(kept, a)
		}
	}
	return d.transition(ctx, failed, prev, union(kept, prev.want.Aliases))
}

func conflictErr(conflicts []aliases.Step) error {
	var errs []error
	for _, c := range conflicts {
		errs = append(errs, fmt.Errorf("alias %s: %s", c.Alias, c.Reason))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("aliases: %w", errors.Join(errs...))
}

// claim probes every address this box is about to take (RFC 5227) and refuses
// the whole apply when another host still answers for one. Addresses already
// on the NIC, and those prev held (the watch puts those back), are not probed.
func (d *Daemon) claim(ctx context.Context, prev, next *generation) error {
	return d.probe(ctx, next, prev.desired().aliasesOrNil())
}

// probe probes every address g holds that is neither on the NIC nor in skip.
func (d *Daemon) probe(ctx context.Context, g *generation, skip []aliases.Alias) error {
	timeout := g.want.Settings.ProbeTimeout
	if timeout <= 0 {
		return nil
	}
	owned, err := d.sub.Aliases.Owned()
	if err != nil {
		return fmt.Errorf("aliases: %w", err)
	}
	present := map[netip.Addr]bool{}
	for _, p := range owned {
		present[p.Addr()] = true
	}
	for _, a := range skip {
		present[a.Prefix.Addr()] = true
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, a := range g.want.Aliases {
		if present[a.Prefix.Addr()] {
			continue
		}
		wg.Go(func() {
			mac, err := d.sub.Aliases.Probe(ctx, a.Prefix.Addr(), timeout)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, aliases.ErrNoLink):
				// Nothing can answer on a link that is not there; the
				// address is added when the NIC appears.
				d.log.Warn("not probed: the NIC is absent or down", "alias", a.Name, "addr", a.Prefix.Addr().String())
			case err != nil:
				errs = append(errs, fmt.Errorf("probing %s for alias %s: %w", a.Prefix.Addr(), a.Name, err))
			case mac != nil:
				errs = append(errs, fmt.Errorf("address %s (alias %s) %s %s: release it on its old host first (set its host there and reload), then reload here", a.Prefix.Addr(), a.Name, heldElsewhere, mac))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startState is what gatewayd found before its first apply: the aliases it
// already owned on the NIC (a previous run's), and whether the router role's
// record held anything then (routes, the WAN address, changed sysctls).
type startState struct {
	owned      map[netip.Prefix]bool
	routerHeld bool
}

func (d *Daemon) foundAtStart() startState {
	st := startState{owned: map[netip.Prefix]bool{}}
	if owned, err := d.sub.Aliases.Owned(); err == nil {
		for _, p := range owned {
			st.owned[p] = true
		}
	}
	st.routerHeld = d.sub.Router.Holds()
	return st
}

// failedStart returns the box to how gatewayd found it after a first apply
// failed, except the firewall, which stays so the box fails closed: the
// aliases it added are removed, the roles stopped, and the router's routes
// and sysctls released unless a previous run held them. The error says what
// failed and what was left.
func (d *Daemon) failedStart(ctx context.Context, next *generation, found startState, cause error) error {
	// The apply's context may be why it failed; the clean-up runs anyway.
	ctx = context.WithoutCancel(ctx)
	var kept, removed []string
	var keep []aliases.Alias
	for _, a := range next.want.Aliases {
		if found.owned[a.Prefix] {
			keep = append(keep, a)
			kept = append(kept, a.String())
		} else {
			removed = append(removed, a.String())
		}
	}
	var errs []error
	if _, err := d.sub.Aliases.SetQuiet(ctx, keep); err != nil {
		errs = append(errs, fmt.Errorf("removing the aliases it added: %w", err))
	}
	errs = append(errs, d.sub.DHCP.Set(ctx, nil), d.sub.DNS.Set(ctx, nil))
	router := "kept the router's routes and sysctls of the previous run"
	if !found.routerHeld {
		errs = append(errs, d.sub.Router.Set(ctx, nil))
		router = "released the router's routes and sysctls"
	}
	left := fmt.Sprintf("the firewall stays in place, closed; %s", router)
	if len(removed) > 0 {
		left += "; removed the aliases it had added: " + strings.Join(removed, ", ")
	}
	if len(kept) > 0 {
		left += "; kept the aliases a previous run had added: " + strings.Join(kept, ", ")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\nstarting failed and cleaning up failed too (%w); %s", cause, err, left)
	}
	return fmt.Errorf("%w\nnothing else was changed: %s", cause, left)
}

// setDegraded records why the running state is not the config's (nil: it is
// again), and tells systemd.
func (d *Daemon) setDegraded(err error) {
	d.mu.Lock()
	was := d.degraded
	d.degraded = err
	d.mu.Unlock()
	switch {
	case err != nil:
		_ = notify("STATUS=degraded: " + err.Error())
	case was != nil:
		_ = notify("STATUS=running")
	}
}

// heldElsewhere is the words of the one refusal `reload --wait` waits out.
const heldElsewhere = "is still held by"
