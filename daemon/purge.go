package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"gatewayd/config"
	"gatewayd/statedir"
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
	if err := statedir.Check(c.Gateway.StateDir); err != nil {
		return err
	}
	unlock, err := statedir.Lock(c.Gateway.StateDir)
	if err != nil {
		return fmt.Errorf("not purging: %w", err)
	}
	defer unlock()
	log := slog.New(slog.DiscardHandler)
	var errs []error
	for _, p := range purgers(c, log) {
		if p.open != nil {
			errs = append(errs, p.open)
			continue
		}
		if err := p.purge(ctx); err != nil {
			errs = append(errs, fmt.Errorf("purging %s: %w", p.name, err))
		} else {
			fmt.Fprintf(out, "removed %s\n", p.name)
		}
	}
	return errors.Join(errs...)
}

// purger removes what one subsystem owns; open is the error opening it.
type purger struct {
	name  string
	purge func(context.Context) error
	open  error
}

// purgers open, with the same constructors as the daemon, each subsystem
// that owns something in the kernel, and say how to remove it.
func purgers(c *config.Config, log *slog.Logger) []purger {
	var out []purger
	if nic, err := openAliases(c, log); err != nil {
		out = append(out, purger{open: err})
	} else {
		out = append(out, purger{name: "gatewayd's addresses on " + c.Gateway.Interface, purge: func(ctx context.Context) error {
			defer nic.Close()
			return nic.Purge(ctx)
		}})
	}
	if fw, err := openFirewall(log); err != nil {
		out = append(out, purger{open: err})
	} else {
		out = append(out, purger{name: "table inet gatewayd", purge: func(context.Context) error { defer fw.Close(); return fw.Purge() }})
	}
	if rt, err := openRouter(c, log); err != nil {
		out = append(out, purger{open: err})
	} else {
		out = append(out, purger{name: "gatewayd's routes and sysctls", purge: func(context.Context) error { defer rt.Close(); return rt.Purge() }})
	}
	return out
}

// IsHeldElsewhere reports whether a refusal says another host still holds an
// address, the one refusal that `reload --wait` waits out.
func IsHeldElsewhere(msg string) bool { return strings.Contains(msg, heldElsewhere) }
