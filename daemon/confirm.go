package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatewayd/config"
)

// confirmation is a reload applied with --confirm: the daemon returns to
// good by itself at by, unless `gatewayd confirm` arrives first (firewalld's
// --timeout, OpenWrt's apply with rollback, JunOS's commit confirmed).
type confirmation struct {
	by    time.Time
	good  *config.Config // the last confirmed config: what the timer returns to
	timer *time.Timer
}

// applyConfirmed applies c, then returns to the config running before it
// after timeout unless Confirm is called. A reload while one is waiting
// keeps the same point to return to: the last confirmed config.
func (d *Daemon) applyConfirmed(c *config.Config, timeout time.Duration) ([]string, error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	good := d.cur.config()
	d.mu.Lock()
	if d.confirm != nil {
		good = d.confirm.good
	}
	d.mu.Unlock()
	steps, err := d.apply(context.Background(), c)
	if err != nil {
		return steps, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(steps) == 0 && d.confirm == nil {
		return nil, nil // nothing changed and nothing waits: nothing to confirm
	}
	if d.confirm != nil {
		d.confirm.timer.Stop()
	}
	pending := &confirmation{by: time.Now().Add(timeout), good: good}
	pending.timer = time.AfterFunc(timeout, func() { d.confirmExpired(pending) })
	d.confirm = pending
	d.log.Warn("reload applied; it is undone unless confirmed", "confirm_by", pending.by.Format(time.RFC3339))
	return append(steps, fmt.Sprintf("# applied; run `gatewayd confirm` within %s or this box returns to the previous config", timeout)), nil
}

// Confirm keeps the config a --confirm reload applied. It waits for an
// apply in progress, so it never confirms half of one, nor races the timer.
func (d *Daemon) Confirm() error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	return d.confirmLocked("confirmed")
}

// confirmLocked ends the wait of a --confirm reload; the caller holds
// applyMu.
func (d *Daemon) confirmLocked(how string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.confirm == nil {
		return errors.New("no reload is waiting for confirmation")
	}
	d.confirm.timer.Stop()
	d.confirm = nil
	d.log.Info("reload " + how)
	return nil
}

// confirmBounds are the waits --confirm accepts: long enough to reconnect
// and type one command, short enough that a locked-out box comes back.
const (
	minConfirm = time.Second
	maxConfirm = 24 * time.Hour
)

// confirmExpired returns to the last confirmed config.
func (d *Daemon) confirmExpired(pending *confirmation) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	current := d.confirm == pending
	if current {
		d.confirm = nil
	}
	d.mu.Unlock()
	if !current || d.isStopped() {
		return
	}
	d.log.Warn("the reload was not confirmed in time: returning to the previous config")
	if _, err := d.apply(context.Background(), pending.good); err != nil {
		d.log.Error("returning to the previous config after an unconfirmed reload", "err", err)
		d.setDegraded(fmt.Errorf("an unconfirmed reload could not be undone: %w", err))
	}
}
