package statedir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLocked means another gatewayd process holds the state directory.
var ErrLocked = errors.New("the state directory is in use by another gatewayd")

// Lock takes dir for this process alone: the daemon holds it while it runs,
// and the commands that touch the state without the daemon (purge, leases
// with the daemon stopped) take it too, so two writers never share the lease
// log or the record of owned addresses. The lock is an flock on <dir>/lock
// (opened O_NOFOLLOW: a planted link is refused, nothing is written through
// it), released when the process exits, whatever the way, or when release
// is called. The file holds the holder's pid; a refused Lock returns
// ErrLocked naming it. dir is created, mode 0700, if missing.
func Lock(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "lock")
	f, err := Open(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s holds %s)", ErrLocked, holder(f), path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := writePid(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing the pid into %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// holder reads the pid the lock's holder wrote, or "?".
func holder(f *os.File) string {
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if pid := strings.TrimSpace(string(b)); pid != "" {
		return pid
	}
	return "?"
}

func writePid(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}
