package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"gatewayd/aliases"
	"gatewayd/config"
)

// Purge is `gatewayd purge`: it removes everything gatewayd owns on this box:
// the aliases it added, its routes and its nftables table. Nothing else is
// touched. The daemon must be stopped first, or it would put them back.
func Purge(ctx context.Context, path string, out io.Writer) error {
	c, err := config.Load(path)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = Call(cctx, c.Gateway.ControlSocket, Request{Op: "status"})
	switch {
	case err == nil:
		return fmt.Errorf("the daemon is running on %s: stop it first (systemctl stop gatewayd), then purge", c.Gateway.ControlSocket)
	case !errors.Is(err, ErrNotRunning):
		return fmt.Errorf("cannot tell whether the daemon runs, so nothing was removed: %w", err)
	}
	unlock, err := LockState(c.Gateway.StateDir)
	if err != nil {
		return fmt.Errorf("not purging: %w", err)
	}
	defer unlock()
	log := slog.New(slog.DiscardHandler)
	var errs []error
	purgers, err := openPurgers(c, log)
	errs = append(errs, err)
	if nic, err := aliases.Open(aliases.Options{Interface: c.Gateway.Interface, StateDir: c.Gateway.StateDir, Logger: log}); err != nil {
		errs = append(errs, err)
	} else {
		purgers = append([]purger{named{"gatewayd's addresses on " + c.Gateway.Interface, func(ctx context.Context) error {
			defer nic.Close()
			return nic.Purge(ctx)
		}}}, purgers...)
	}
	for _, p := range purgers {
		if err := p.Purge(ctx); err != nil {
			errs = append(errs, fmt.Errorf("purging %s: %w", p.Name(), err))
		} else {
			fmt.Fprintf(out, "removed %s\n", p.Name())
		}
	}
	return errors.Join(errs...)
}

// purger removes what one subsystem owns.
type purger interface {
	Name() string
	Purge(ctx context.Context) error
}

// IsHeldElsewhere reports whether a refusal says another host still holds an
// address, the one refusal that `reload --wait` waits out.
func IsHeldElsewhere(msg string) bool { return strings.Contains(msg, heldElsewhere) }

// PlanFromScratch is what starting the daemon on c would do, in apply order,
// for `gatewayd plan` when no daemon runs (the NIC is not read).
func PlanFromScratch(c *config.Config) []string {
	var p plan
	for _, a := range c.Aliases {
		if !c.Holds(a) {
			p.notes = append(p.notes, fmt.Sprintf("# alias %s (%s) is held by host %s", a.Name, a.Address, a.Host))
			continue
		}
		p.adds = append(p.adds, aliases.Step{Op: aliases.OpAdd, Interface: c.Gateway.Interface,
			Alias: aliases.Alias{Name: a.Name, Prefix: a.Address, Label: a.Label}}.String())
	}
	for i, part := range planners(c) {
		if i == 0 {
			p.firewall = part.Plan(nil, c)
			continue
		}
		p.roles = append(p.roles, part.Plan(nil, c)...)
	}
	return p.lines()
}
