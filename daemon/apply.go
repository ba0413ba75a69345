package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
func (d *Daemon) Apply(ctx context.Context, next *config.Config) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil, errors.New("gatewayd is stopping")
	}
	if err := d.checkImmutable(next); err != nil {
		return nil, err
	}
	p, err := d.plan(d.cfg, next)
	if err != nil {
		return nil, err
	}
	if err := p.conflictErr(); err != nil {
		return nil, err
	}
	prev := d.cfg
	unchanged := prev != nil && sameConfig(prev, next) && d.degraded == nil
	if prev != nil && !unchanged {
		_ = notify(reloadingState())
		defer notify("READY=1")
	}
	if err := d.claim(ctx, prev, next); err != nil {
		return nil, err
	}
	d.nic.SetAnnounce(announceOf(next))
	if err := d.transition(ctx, prev, next, union(held(prev), held(next))); err != nil {
		if prev == nil {
			// At start there is nothing to return to; what was applied stays,
			// the firewall first, so the box fails closed.
			return nil, err
		}
		d.log.Error("apply failed, returning to the previous config", "err", err)
		d.nic.SetAnnounce(announceOf(prev))
		if rerr := d.rollback(ctx, next, prev); rerr != nil {
			d.degraded = fmt.Errorf("a reload failed (%w) and returning to the previous config also failed (%w)", err, rerr)
			_ = notify("STATUS=degraded: " + d.degraded.Error())
			return nil, d.degraded
		}
		return nil, fmt.Errorf("%w; the previous config is running again", err)
	}
	if d.degraded != nil {
		d.degraded = nil
		_ = notify("STATUS=running")
	}
	if unchanged {
		d.log.Info("reload: no changes")
		return nil, nil
	}
	d.cfg, d.gen, d.applied = next, d.gen+1, time.Now()
	if d.level != nil {
		var lv slog.Level
		if lv.UnmarshalText([]byte(orDefault(next.Gateway.LogLevel, "info"))) == nil {
			d.level.Set(lv)
		}
	}
	steps := p.lines()
	d.log.Info("applied", "generation", d.gen, "steps", len(steps))
	for _, s := range steps {
		d.log.Debug("applied", "step", s)
	}
	return steps, nil
}

// transition moves from one config to another: the firewall for both the
// kept and the new aliases first, then the aliases of bridge (the new ones
// come up without their policy missing), then the roles (each starts new
// listeners before closing old ones); only then are the new addresses
// announced, the aliases no longer held removed, and finally their firewall
// rules.
func (d *Daemon) transition(ctx context.Context, from, to *config.Config, bridge []aliases.Alias) error {
	var fw, roles []Part
	if len(d.parts) > 0 {
		fw, roles = d.parts[:1], d.parts[1:]
	}
	during := stillHolding(from, to)
	for _, p := range fw {
		if err := p.Set(ctx, during); err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	res, err := d.nic.SetQuiet(ctx, bridge)
	if err != nil {
		return fmt.Errorf("aliases: %w", err)
	}
	if err := conflictErr(res.Conflicts); err != nil {
		return err
	}
	for _, p := range roles {
		if err := p.Set(ctx, to); err != nil {
			return fmt.Errorf("%s role: %w", p.Name(), err)
		}
	}
	var added []netip.Addr
	for _, s := range res.Done {
		if s.Op == aliases.OpAdd || s.Op == aliases.OpRelabel {
			added = append(added, s.Alias.Prefix.Addr())
		}
	}
	if len(added) > 0 {
		if err := d.nic.Announce(added...); err != nil {
			d.log.Warn("gratuitous ARP failed", "err", err)
		}
	}
	if _, err := d.nic.SetQuiet(ctx, held(to)); err != nil {
		return fmt.Errorf("aliases: %w", err)
	}
	if during != to {
		for _, p := range fw {
			if err := p.Set(ctx, to); err != nil {
				return fmt.Errorf("%s: %w", p.Name(), err)
			}
		}
	}
	return nil
}

// rollback returns from a failed apply of failed to prev. Addresses prev held
// that the failed apply released are taken back only after a probe finds
// them free: another box may have claimed them meanwhile. Addresses failed
// would have claimed are kept during the way back only if they are on the NIC.
func (d *Daemon) rollback(ctx context.Context, failed, prev *config.Config) error {
	if err := d.claimMissing(ctx, prev); err != nil {
		return fmt.Errorf("not taking addresses back: %w", err)
	}
	owned, err := d.nic.Owned()
	if err != nil {
		return fmt.Errorf("aliases: %w", err)
	}
	on := map[netip.Prefix]bool{}
	for _, p := range owned {
		on[p] = true
	}
	var kept []aliases.Alias
	for _, a := range held(failed) {
		if on[a.Prefix] {
			kept = append(kept, a)
		}
	}
	return d.transition(ctx, failed, prev, union(kept, held(prev)))
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

// announceOf is the config's gratuitous ARP setting for the aliases package
// (announce_count 0 means none).
func announceOf(c *config.Config) aliases.Announce {
	n := c.Gateway.AnnounceCount
	if n == 0 {
		n = -1
	}
	return aliases.Announce{Count: n, Interval: c.Gateway.AnnounceInterval.Duration}
}

// stillHolding is to, but still holding the aliases from held that to gives to
// another host: the firewall keeps covering them until their role has
// stopped and their address is gone.
func stillHolding(from, to *config.Config) *config.Config {
	if from == nil {
		return to
	}
	var moved []int
	for i, a := range to.Aliases {
		if !to.Holds(a) && heldIn(from, a.Address.Addr()) {
			moved = append(moved, i)
		}
	}
	if len(moved) == 0 {
		return to
	}
	c := *to
	c.Aliases = append([]config.Alias(nil), to.Aliases...)
	for _, i := range moved {
		c.Aliases[i].Host = ""
	}
	return &c
}

// claim probes every address this box is about to take (RFC 5227) and refuses
// the whole apply when another host still answers for one. Addresses already
// on the NIC, and those prev held (the watch puts those back), are not probed.
func (d *Daemon) claim(ctx context.Context, prev, next *config.Config) error {
	var skip []aliases.Alias
	if prev != nil {
		skip = held(prev)
	}
	return d.probe(ctx, next, skip)
}

// claimMissing probes every address of c this box holds that is not on the NIC.
func (d *Daemon) claimMissing(ctx context.Context, c *config.Config) error {
	return d.probe(ctx, c, nil)
}

func (d *Daemon) probe(ctx context.Context, c *config.Config, skip []aliases.Alias) error {
	timeout := c.Gateway.ProbeTimeout.Duration
	if timeout <= 0 {
		return nil
	}
	owned, err := d.nic.Owned()
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
	for _, a := range held(c) {
		if present[a.Prefix.Addr()] {
			continue
		}
		wg.Go(func() {
			mac, err := d.nic.Probe(ctx, a.Prefix.Addr(), timeout)
			mu.Lock()
			defer mu.Unlock()
			switch {
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

// heldElsewhere is the words of the one refusal `reload --wait` waits out.
const heldElsewhere = "is still held by"

func heldIn(c *config.Config, a netip.Addr) bool {
	if c == nil {
		return false
	}
	for _, h := range c.Held() {
		if h.Address.Addr() == a {
			return true
		}
	}
	return false
}
