// Package statedir is the discipline of gatewayd's state directory
// (/var/lib/gatewayd: the record of owned addresses, the router's record,
// the lease log): files replaced atomically and durably, one process at a
// time, no symbolic link followed, and a directory nobody else can write.
//
// It owns only how files in the directory are opened, written and locked;
// what they hold belongs to the packages that write them. It never removes a
// file it did not create itself (its own temporary files), and never
// changes the directory's owner or mode: Check says what is wrong and the
// operator fixes it.
package statedir

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Open opens path like os.OpenFile but refuses a symbolic link in its last
// element (O_NOFOLLOW): someone who could plant a link in the state
// directory would otherwise make gatewayd write, as root, wherever it
// points.
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, perm)
	if err != nil {
		return nil, explain(path, err)
	}
	return f, nil
}

// explain turns ELOOP from O_NOFOLLOW into a message saying what to do.
func explain(path string, err error) error {
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("opening %s: it is a symbolic link, which gatewayd does not follow in its state directory; replace it with the file itself", path)
	}
	return err // *fs.PathError names the path already
}

// WriteFile replaces path with data, atomically and durably: a crash leaves
// the old file or the new one, never a torn one, and once WriteFile returns
// nil the new one survives a power cut. It writes a temporary file in the
// same directory (created O_EXCL|O_NOFOLLOW, so it never reuses or follows
// anything), syncs it, renames it over path and syncs the directory. The
// file gets exactly perm, whatever the umask. A symbolic link at path is
// replaced, never written through. Every error is returned; on one, the
// temporary file is removed and path is left as it was (unless only the
// final directory sync failed: then the new file is in place but may not
// survive a crash).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc is WriteFile for contents too large to build in memory first
// (a compacted lease log): fill writes them, and an error from it is
// returned with path left as it was.
func WriteFunc(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := createTemp(dir, filepath.Base(path))
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := write(f, perm, fill); err != nil {
		return fmt.Errorf("writing %s: %w", path, errors.Join(err, os.Remove(f.Name())))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, errors.Join(err, os.Remove(f.Name())))
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("writing %s: the file is replaced but may not survive a crash: %w", path, err)
	}
	return nil
}

// write fills f through a buffer, gives it perm, syncs and closes it; f is
// closed whatever happens.
func write(f *os.File, perm os.FileMode, fill func(w io.Writer) error) error {
	w := bufio.NewWriterSize(f, 64<<10)
	err := fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// tempPattern matches the names createTemp gives for base (already escaped
// for filepath.Match).
func tempPattern(base string) string {
	return "." + base + "." + strings.Repeat("[0-9a-f]", 12) + ".tmp"
}

// RemoveTemps removes the temporary files that writes of path interrupted
// by a crash left behind. Call it while holding the directory's Lock (a
// write in progress elsewhere would lose its file), before the first write.
func RemoveTemps(path string) error {
	dir, base := filepath.Split(path)
	names, err := filepath.Glob(filepath.Join(dir, tempPattern(globEscape(base))))
	if err != nil {
		return fmt.Errorf("removing leftover temporary files of %s: %w", path, err)
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing leftover temporary files of %s: %w", path, err)
	}
	return nil
}

// globEscape quotes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// createTemp creates ".<base>.<12 hex digits>.tmp" in dir, exclusively.
func createTemp(dir, base string) (*os.File, error) {
	for try := 0; ; try++ {
		var r [6]byte
		rand.Read(r[:])
		name := filepath.Join(dir, "."+base+"."+hex.EncodeToString(r[:])+".tmp")
		f, err := Open(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 10 {
			continue
		}
		return f, err
	}
}

// SyncDir makes the creates, renames and removes done in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// Check refuses a state directory that someone other than root could
// change: owned by another user, or writable by its group or by others.
// Whoever can write there can make gatewayd remove addresses it believes
// are its own, hand out leases, or (through a planted link, were one
// followed) overwrite any file. A directory that does not exist yet passes:
// Lock creates it, mode 0700. The owner may also be the user gatewayd runs
// as, when that is not root.
func Check(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking state directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("state directory %s is not a directory", dir)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("checking state directory %s: no owner information", dir)
	}
	if uid := int(sys.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("state directory %s is owned by uid %d, not root: another user could change gatewayd's state; run chown root: %s", dir, uid, dir)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("state directory %s is writable by its group or by others (mode %s): they could change gatewayd's state; run chmod go-w %s", dir, st.Mode().Perm(), dir)
	}
	return nil
}
