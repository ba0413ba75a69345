package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"time"

	"gatewayd/aliases"
	"gatewayd/config"
)

// Apply makes this box match c: the aliases it holds, the firewall and the roles.
// It returns the steps carried out. On failure it returns to the previous
// generation and says what failed; the running generation changes only when
// everything succeeded.
func (d *Daemon) Apply(ctx context.Context, next *config.Config) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkImmutable(next); err != nil {
		return nil, err
	}
	if d.cfg != nil && sameConfig(d.cfg, next) {
		d.log.Info("reload: no changes")
		return nil, nil
	}
	steps, err := d.plan(d.cfg, next)
	if err != nil {
		return nil, err
	}
	if d.cfg != nil {
		_ = notify(reloadingState())
		defer notify("READY=1")
	}
	if err := d.claim(ctx, d.cfg, next); err != nil {
		return nil, err
	}
	prev := d.cfg
	if err := d.transition(ctx, prev, next); err != nil {
		if prev == nil {
			return nil, err
		}
		d.log.Error("apply failed, returning to the previous config", "err", err)
		if rerr := d.transition(ctx, next, prev); rerr != nil {
			return nil, fmt.Errorf("%w; returning to the previous config also failed: %v", err, rerr)
		}
		return nil, fmt.Errorf("%w; the previous config is running again", err)
	}
	d.cfg, d.gen, d.applied = next, d.gen+1, time.Now()
	d.log.Info("applied", "generation", d.gen, "steps", len(steps))
	for _, s := range steps {
		d.log.Debug("applied", "step", s)
	}
	return steps, nil
}

// transition moves from one config to another: the firewall for both the
// kept and the new aliases first, then the new aliases (so nothing answers on
// an address without its policy), then the roles (each starts new listeners
// before closing old ones), then the aliases no longer held go, and only then
// their firewall rules.
func (d *Daemon) transition(ctx context.Context, from, to *config.Config) error {
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
	res, err := d.nic.Set(ctx, union(held(from), held(to)))
	if err != nil {
		return fmt.Errorf("aliases: %w", err)
	}
	if len(res.Conflicts) > 0 {
		var errs []error
		for _, c := range res.Conflicts {
			errs = append(errs, fmt.Errorf("alias %s: %s", c.Alias, c.Reason))
		}
		return fmt.Errorf("aliases: %w", errors.Join(errs...))
	}
	for _, p := range roles {
		if err := p.Set(ctx, to); err != nil {
			return fmt.Errorf("%s role: %w", p.Name(), err)
		}
	}
	if _, err := d.nic.Set(ctx, held(to)); err != nil {
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

// plan lists what applying next after prev would change.
func (d *Daemon) plan(prev, next *config.Config) ([]string, error) {
	var steps []string
	for _, a := range next.Aliases {
		if !next.Holds(a) {
			note := fmt.Sprintf("# alias %s (%s) is held by host %s", a.Name, a.Address, a.Host)
			if prev == nil || prev.Alias(a.Name) == nil || prev.Holds(*prev.Alias(a.Name)) || !reflect.DeepEqual(*prev.Alias(a.Name), a) {
				steps = append(steps, note)
			}
		}
	}
	alsteps, err := d.nic.Plan(held(next))
	if err != nil {
		return nil, fmt.Errorf("planning aliases: %w", err)
	}
	for _, s := range alsteps {
		steps = append(steps, s.String())
	}
	for _, p := range d.parts {
		steps = append(steps, p.Plan(prev, next)...)
	}
	return steps, nil
}

// claim probes every address this box is about to take (RFC 5227) and refuses
// the whole apply when another host still answers for one.
func (d *Daemon) claim(ctx context.Context, prev, next *config.Config) error {
	timeout := next.Gateway.ProbeTimeout.Duration
	if timeout <= 0 {
		return nil
	}
	present := map[netip.Addr]bool{}
	for _, st := range d.nic.Status() {
		if st.Present {
			present[st.Alias.Prefix.Addr()] = true
		}
	}
	var fresh []aliases.Alias
	for _, a := range held(next) {
		if !present[a.Prefix.Addr()] && !heldIn(prev, a.Prefix.Addr()) {
			fresh = append(fresh, a)
		}
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, a := range fresh {
		wg.Go(func() {
			mac, err := d.nic.Probe(ctx, a.Prefix.Addr(), timeout)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("probing %s for alias %s: %w", a.Prefix.Addr(), a.Name, err))
			case mac != nil:
				errs = append(errs, fmt.Errorf("address %s (alias %s) is still held by %s: release it on its old host first (set its host there and reload), then reload here", a.Prefix.Addr(), a.Name, mac))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

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
