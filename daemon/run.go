package daemon

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gatewayd/config"
	"gatewayd/statedir"
)

// RunOptions are the flags of `gatewayd run`.
type RunOptions struct {
	// AcceptLeaseLoss opens a damaged lease log that keeps fewer than half
	// of the leases it appears to hold (the damaged file is kept aside);
	// without it the start is refused.
	AcceptLeaseLoss bool
}

// Run is `gatewayd run`: it applies the config at path, serves the control
// socket, reloads on SIGHUP and stops on SIGTERM or SIGINT, leaving the
// aliases and the firewall in place.
func Run(ctx context.Context, path string, logOut io.Writer, opts RunOptions) error {
	c, err := config.Load(path)
	if err != nil {
		return err
	}
	lw := newLogWriter(logOut, c.Gateway.LogFormat)
	defer lw.Close(2 * time.Second)
	log, level := newLogger(lw, c.Gateway.LogLevel, c.Gateway.LogFormat)
	if err := statedir.Check(c.Gateway.StateDir); err != nil {
		return err
	}
	unlock, err := statedir.Lock(c.Gateway.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	returned := false
	if good, err := unconfirmed(c.Gateway.StateDir); err != nil {
		log.Error("a reload was waiting for confirmation, but the config to return to cannot be read; starting with the file", "err", err)
	} else if good != nil && good.Gateway.StateDir == c.Gateway.StateDir {
		log.Warn("a reload applied with --confirm was not confirmed before gatewayd stopped: starting with the config it would have returned to", "config", good.File)
		c = good
		returned = true
	}
	ctl, err := listenControl(c.Gateway.ControlSocket)
	if err != nil {
		return err
	}
	sub, err := OpenSubsystems(c, log, opts)
	if err != nil {
		ctl.Close()
		return err
	}
	var metrics string
	if c.Gateway.Metrics.IsValid() {
		metrics = c.Gateway.Metrics.String()
	}
	d := New(Options{Logger: log, Level: level, Subsystems: sub, Metrics: metrics, WebNames: webNames(c), Facts: readFacts})
	if err := d.startWeb(); err != nil {
		_ = sub.Close()
		ctl.Close()
		return err
	}
	defer d.stopWeb()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := d.Start(ctx, c, ctl); err != nil {
		d.Stop()
		return err
	}
	if returned {
		d.mu.Lock()
		d.forgetConfirm()
		d.mu.Unlock()
	}
	logWarnings(log, c)
	log.Info("gatewayd running", "config", path, "host", c.Gateway.Host, "interface", c.Gateway.Interface)
	_ = notify("READY=1")
	for {
		select {
		case <-ctx.Done():
			return d.shutdown()
		case s := <-sigs:
			if s != syscall.SIGHUP {
				log.Info("stopping", "signal", s.String())
				return d.shutdown()
			}
			d.reloadFile(path)
		}
	}
}

func (d *Daemon) shutdown() error {
	_ = notify("STOPPING=1")
	d.stopWeb()
	return d.Stop()
}

// reloadFile is SIGHUP: reload the file last applied (the one the daemon
// was started with, or the one the last `gatewayd reload` sent).
func (d *Daemon) reloadFile(started string) {
	path := started
	d.mu.Lock()
	if c := d.cur.config(); c != nil && c.File != "" {
		path = c.File
	}
	d.mu.Unlock()
	text, err := os.ReadFile(path)
	if err != nil {
		d.log.Error("reload refused", "err", err)
		return
	}
	if changes, _, err := d.Reload(path, text, 0); err != nil {
		d.log.Error("reload failed", "config", path, "err", err)
	} else {
		d.log.Info("reloaded", "changes", len(changes))
	}
}
