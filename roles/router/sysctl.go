package router

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// procSys reads and writes sysctls under a /proc/sys directory. /proc/sys/net
// shows the network namespace of the thread that opens the file: callers run
// in the namespace they manage.
type procSys string

func (p procSys) path(key string) (string, error) {
	if !strings.HasPrefix(key, "net/") || strings.Contains(key, "..") {
		return "", fmt.Errorf("sysctl %s: only net/ keys belong to the router role", key)
	}
	return filepath.Join(string(p), key), nil
}

func (p procSys) read(key string) (string, error) {
	path, err := p.path(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (p procSys) write(key, value string) error {
	path, err := p.path(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("setting sysctl %s=%s: %w", key, value, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("setting sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// setSysctls writes each wanted value that differs, recording the value it
// found first, and puts back the recorded ones no longer wanted. It returns
// how many values it wrote, and the values of absent interfaces, which wait.
func (r *Router) setSysctls(want []sysctl) (int, []Pending, error) {
	writes, pending, err := r.applySysctls(want)
	n, errR := r.restoreSysctls(func(key string) bool { return !slices.ContainsFunc(want, keyIs(key)) })
	return writes + n, pending, errors.Join(err, errR)
}

func keyIs(key string) func(sysctl) bool { return func(s sysctl) bool { return s.Key == key } }

// applySysctls writes each wanted value that differs, recording the value
// it found first; it restores nothing.
func (r *Router) applySysctls(want []sysctl) (int, []Pending, error) {
	var errs []error
	var pending []Pending
	writes := 0
	for _, s := range want {
		cur, err := r.sys.read(s.Key)
		if errors.Is(err, os.ErrNotExist) {
			if p, ok := r.absentSysctl(s); ok {
				pending = append(pending, p)
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cur == s.Value {
			continue
		}
		if i := r.recordedSysctl(s.Key); i < 0 {
			r.rec.Sysctls = append(r.rec.Sysctls, changedSysctl{Key: s.Key, Was: cur, Set: s.Value})
		} else {
			r.rec.Sysctls[i].Set = s.Value
		}
		// On disk before the change, so a crash cannot lose the old value.
		if err := r.rec.save(); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.sys.write(s.Key, s.Value); err != nil {
			errs = append(errs, err)
			continue
		}
		writes++
	}
	return writes, pending, errors.Join(errs...)
}

// absentSysctl handles a wanted key that does not exist: its interface is
// absent (pending; what gatewayd changed on it went with it, so the record
// forgets it and a re-created interface records its own value), or IPv6 is
// off in this kernel (nothing to close: skipped).
func (r *Router) absentSysctl(s sysctl) (Pending, bool) {
	p, ok := r.absentPending(s)
	if i := r.recordedSysctl(s.Key); ok && i >= 0 {
		r.rec.Sysctls = slices.Delete(r.rec.Sysctls, i, i+1)
		r.rec.dirty = true
	}
	return p, ok
}

// absentPending is what waits for an absent key, if anything.
func (r *Router) absentPending(s sysctl) (Pending, bool) {
	if strings.HasPrefix(s.Key, "net/ipv6/") {
		if _, err := r.sys.read("net/ipv6/conf/all/accept_ra"); errors.Is(err, os.ErrNotExist) {
			return Pending{}, false
		}
	}
	why := "no such sysctl"
	if dev := sysctlInterface(s.Key); dev != "" {
		why = "interface " + dev + " is absent"
	}
	return Pending{What: "sysctl -w " + s.name() + "=" + s.Value, Reason: why}, true
}

// restoreSysctls puts back, newest first, the recorded sysctls that match:
// to the value found, unless the value was changed since gatewayd set it.
func (r *Router) restoreSysctls(match func(key string) bool) (int, error) {
	var errs []error
	writes := 0
	keep := []changedSysctl{}
	for i := len(r.rec.Sysctls) - 1; i >= 0; i-- {
		s := r.rec.Sysctls[i]
		if !match(s.Key) {
			keep = append([]changedSysctl{s}, keep...)
			continue
		}
		cur, err := r.sys.read(s.Key)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// The interface is gone, and its settings with it.
		case err != nil:
			errs = append(errs, err)
			keep = append([]changedSysctl{s}, keep...)
		case cur != s.Set:
			r.log.Info("sysctl changed by someone else since gatewayd set it; leaving it", "key", s.Key, "value", cur)
		default:
			if err := r.sys.write(s.Key, s.Was); err != nil {
				errs = append(errs, err)
				keep = append([]changedSysctl{s}, keep...)
				continue
			}
			writes++
		}
	}
	if len(keep) != len(r.rec.Sysctls) {
		r.rec.Sysctls = keep
		if err := r.rec.save(); err != nil {
			errs = append(errs, err)
		}
	}
	return writes, errors.Join(errs...)
}

func (r *Router) recordedSysctl(key string) int {
	for i, s := range r.rec.Sysctls {
		if s.Key == key {
			return i
		}
	}
	return -1
}
