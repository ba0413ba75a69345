package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// notify sends a systemd sd_notify message when NOTIFY_SOCKET is set (Type=notify).
func notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notifying systemd at %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	return nil
}

// reloadingState is the RELOADING message, which systemd wants with a timestamp.
func reloadingState() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/int64(time.Microsecond))
}

// watchdogInterval is how often systemd wants WATCHDOG=1: half of the
// unit's WatchdogSec, which systemd passes as WATCHDOG_USEC (for this
// process, when WATCHDOG_PID is set); 0 when it wants none.
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// watchdog tells systemd the daemon is alive every interval, but only
// while it is: the drift loop has run lately and the controller's state can
// be read. A wedged daemon stops sending, and systemd restarts it.
func (d *Daemon) watchdog(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := d.alive(3 * interval); err != nil {
			if !warned {
				d.log.Error("not telling systemd the daemon is alive", "err", err)
				warned = true
			}
			continue
		}
		warned = false
		_ = notify("WATCHDOG=1")
	}
}

// alive says why the daemon is not serving as it should, or nil.
func (d *Daemon) alive(within time.Duration) error {
	if last := time.Unix(0, d.driftTick.Load()); time.Since(last) > within {
		return fmt.Errorf("the drift loop has not run since %s", last.Format(time.RFC3339))
	}
	locked := make(chan struct{})
	go func() {
		d.mu.Lock()
		d.mu.Unlock()
		close(locked)
	}()
	select {
	case <-locked:
		return nil
	case <-time.After(within):
		return errors.New("the controller's state has been locked for too long")
	}
}
