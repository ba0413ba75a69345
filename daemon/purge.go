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
	if _, err := Call(cctx, c.Gateway.ControlSocket, Request{Op: "status"}); err == nil {
		return fmt.Errorf("the daemon is running on %s: stop it first (systemctl stop gatewayd), then purge", c.Gateway.ControlSocket)
	}
	log := slog.New(slog.DiscardHandler)
	nic, err := aliases.Open(aliases.Options{Interface: c.Gateway.Interface, StateDir: c.Gateway.StateDir, Logger: log})
	if err != nil {
		return err
	}
	defer nic.Close()
	errs := []error{nic.Purge(ctx)}
	purgers, err := openPurgers(c, log)
	errs = append(errs, err)
	for _, p := range purgers {
		if err := p.Purge(ctx); err != nil {
			errs = append(errs, fmt.Errorf("purging %s: %w", p.Name(), err))
		} else {
			fmt.Fprintf(out, "removed %s\n", p.Name())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "removed gatewayd's addresses on %s\n", c.Gateway.Interface)
	return nil
}

// purger removes what one subsystem owns.
type purger interface {
	Name() string
	Purge(ctx context.Context) error
}

// IsHeldElsewhere reports whether a refusal says another host still holds an
// address, the one refusal that `reload --wait` waits out.
func IsHeldElsewhere(msg string) bool { return strings.Contains(msg, "is still held by") }

// PlanFromScratch is what starting the daemon on c would do.
func PlanFromScratch(c *config.Config) []string {
	var steps []string
	for _, a := range c.Aliases {
		if !c.Holds(a) {
			steps = append(steps, fmt.Sprintf("# alias %s (%s) is held by host %s", a.Name, a.Address, a.Host))
			continue
		}
		steps = append(steps, aliases.Step{Op: aliases.OpAdd, Interface: c.Gateway.Interface,
			Alias: aliases.Alias{Name: a.Name, Prefix: a.Address, Label: a.Label}}.String())
	}
	for _, p := range planners(c) {
		steps = append(steps, p.Plan(nil, c)...)
	}
	return steps
}
