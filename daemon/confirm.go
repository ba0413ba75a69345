package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gatewayd/statedir"

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
	if err := saveConfirm(c.Gateway.StateDir, pending); err != nil {
		// Without the record a restart in the window would keep the
		// unconfirmed file: say so, the timer still runs.
		d.log.Error("the config to return to is not on disk: a restart before the confirmation keeps this file", "err", err)
	}
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
	d.forgetConfirm() // else the next start would return to the config before it
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
		d.forgetConfirm()
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

// confirmFile holds, in the state directory, the config a --confirm reload
// returns to, while it waits: a daemon restarted (or the box rebooted) in
// the window starts with that config, not with the unconfirmed file, as
// JunOS's commit confirmed rolls back after a reboot.
const confirmFile = "confirm.json"

type confirmRecord struct {
	By   time.Time `json:"by"`
	File string    `json:"file"`
	Text string    `json:"text"`
}

func saveConfirm(dir string, p *confirmation) error {
	b, err := json.Marshal(confirmRecord{By: p.by, File: p.good.File, Text: string(p.good.Text)})
	if err != nil {
		return err
	}
	return statedir.WriteFile(filepath.Join(dir, confirmFile), b, 0o600)
}

// forgetConfirm removes the record; the caller holds mu.
func (d *Daemon) forgetConfirm() {
	c := d.cur.config()
	if c == nil {
		return
	}
	path := filepath.Join(c.Gateway.StateDir, confirmFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Error("removing the record of a confirmed reload; the next start would return to the config before it", "path", path, "err", err)
	}
}

// unconfirmed returns the config a --confirm reload that never got its
// confirmation returns to, if one waited when the daemon last stopped.
func unconfirmed(dir string) (*config.Config, error) {
	f, err := statedir.Open(filepath.Join(dir, confirmFile), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rec confirmRecord
	if err := json.NewDecoder(io.LimitReader(f, maxRequest)).Decode(&rec); err != nil {
		return nil, fmt.Errorf("reading %s: %w", confirmFile, err)
	}
	return config.Parse(rec.File, []byte(rec.Text))
}
