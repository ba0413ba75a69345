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
// touched. The daemon must be stopped first, or it would put them back. It
// prints only what it really removed.
func Purge(ctx context.Context, path string, out io.Writer) error {
	c, unlock, err := offline(ctx, path, "purge")
	if err != nil {
		return err
	}
	defer unlock()
	log := slog.New(slog.DiscardHandler)
	var errs []error
	for _, p := range purgers(c, log) {
		if p.open != nil {
			errs = append(errs, p.open)
			continue
		}
		removed, err := p.purge(ctx)
		for _, r := range removed {
			fmt.Fprintf(out, "removed %s\n", r)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("purging %s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

// Adopt is `gatewayd adopt`: with the daemon stopped, it takes ownership of
// addresses already on the NIC that match an alias of the file exactly
// (address, length and label), such as the `eth1:0` stanzas of an old
// /etc/network/interfaces, so the next start holds them instead of refusing
// them as someone else's. It changes nothing in the kernel.
func Adopt(ctx context.Context, path string, out io.Writer) error {
	c, unlock, err := offline(ctx, path, "adopt")
	if err != nil {
		return err
	}
	defer unlock()
	nic, err := openAliases(c, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer nic.Close()
	adopted, err := nic.Adopt(desire(c, facts{}).Aliases)
	for _, a := range adopted {
		fmt.Fprintf(out, "adopted %s on %s\n", a, c.Gateway.Interface)
	}
	if err == nil && len(adopted) == 0 {
		fmt.Fprintln(out, "nothing to adopt: no address on the NIC matches an alias exactly")
	}
	return err
}

// offline loads the config for a command that changes gatewayd's state with
// the daemon stopped, checks that it is, and takes the state directory's lock.
func offline(ctx context.Context, path, what string) (*config.Config, func(), error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = Call(cctx, c.Gateway.ControlSocket, Request{Op: "status"})
	switch {
	case err == nil:
		return nil, nil, fmt.Errorf("the daemon is running on %s: stop it first (systemctl stop gatewayd@%s), then %s", c.Gateway.ControlSocket, c.Gateway.Interface, what)
	case !errors.Is(err, ErrNotRunning):
		return nil, nil, fmt.Errorf("cannot tell whether the daemon runs, so nothing was changed: %w", err)
	}
	if err := statedir.Check(c.Gateway.StateDir); err != nil {
		return nil, nil, err
	}
	unlock, err := statedir.Lock(c.Gateway.StateDir)
	if err != nil {
		return nil, nil, fmt.Errorf("not running %s: %w", what, err)
	}
	return c, unlock, nil
}

// purger removes what one subsystem owns and says what it removed; open is
// the error opening it.
type purger struct {
	name  string
	purge func(context.Context) ([]string, error)
	open  error
}

// purgers open, with the same constructors as the daemon, each subsystem
// that owns something in the kernel, and say how to remove it.
func purgers(c *config.Config, log *slog.Logger) []purger {
	var out []purger
	if nic, err := openAliases(c, log); err != nil {
		out = append(out, purger{open: err})
	} else {
		out = append(out, purger{name: "gatewayd's addresses on " + c.Gateway.Interface, purge: func(ctx context.Context) ([]string, error) {
			defer nic.Close()
			removed, err := nic.Purge(ctx)
			var lines []string
			for _, a := range removed {
				lines = append(lines, fmt.Sprintf("%s from %s", a, c.Gateway.Interface))
			}
			return lines, err
		}})
	}
	if fw, err := openFirewall(log); err != nil {
		out = append(out, purger{open: err})
	} else {
		out = append(out, purger{name: "table inet gatewayd", purge: func(context.Context) ([]string, error) {
			defer fw.Close()
			return wrote("table inet gatewayd", fw.Batches, fw.Purge)
		}})
	}
	if rt, err := openRouter(c, log); err != nil {
		out = append(out, purger{open: err})
	} else {
		out = append(out, purger{name: "gatewayd's routes and sysctls", purge: func(context.Context) ([]string, error) {
			defer rt.Close()
			return wrote("gatewayd's routes and sysctls", rt.Writes, rt.Purge)
		}})
	}
	return out
}

// wrote runs purge and reports what only when it wrote to the kernel: a
// purge with nothing left to remove says nothing.
func wrote(what string, writes func() uint64, purge func() error) ([]string, error) {
	before := writes()
	if err := purge(); err != nil {
		return nil, err
	}
	if writes() == before {
		return nil, nil
	}
	return []string{what}, nil
}

// IsHeldElsewhere reports whether a refusal says another host still holds an
// address, the one refusal that `reload --wait` waits out.
func IsHeldElsewhere(msg string) bool { return strings.Contains(msg, heldElsewhere) }
