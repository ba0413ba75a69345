package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"gatewayd/statedir"
)

// recordFile is the record of what the router role changed, in the state dir.
const recordFile = "router.json"

// recordVersion is written; versions 1 (no addresses, no lease) and 2 (no
// server MAC address with the lease) still load.
const recordVersion = 3

// changedSysctl is a sysctl the role changed: Was is the value it found, Set
// the value it wrote.
type changedSysctl struct {
	Key string `json:"key"`
	Was string `json:"was"`
	Set string `json:"set"`
}

// record is the durable list of routes and addresses the role added and
// sysctls it changed, written before every add and after every other change
// so a restart knows what is its own; and the uplink's DHCP lease, so a
// restart asks for the same address again.
type record struct {
	Version   int             `json:"version"`
	Routes    []Route         `json:"routes"`
	Addresses []ownedAddr     `json:"addresses,omitempty"`
	Sysctls   []changedSysctl `json:"sysctls"`
	Lease     *storedLease    `json:"lease,omitempty"`

	path  string
	dirty bool // changed since the last save
}

func loadRecord(dir string) (*record, error) {
	if dir == "" {
		return nil, errors.New("no state directory to record owned routes in")
	}
	// The directory is statedir.Lock's to make (mode 0700), and the daemon
	// holds that lock before it opens the role.
	switch st, err := os.Stat(dir); {
	case err != nil:
		return nil, fmt.Errorf("the state directory for the router record: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("state directory %s is not a directory", dir)
	}
	r := &record{Version: recordVersion, path: filepath.Join(dir, recordFile)}
	// Open runs under the state directory's lock: no write is in flight.
	if err := statedir.RemoveTemps(r.path); err != nil {
		return nil, err
	}
	b, err := readFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the router record %s: %w", r.path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var got record
	if err := dec.Decode(&got); err != nil {
		return nil, fmt.Errorf("reading the router record %s: %w (fix or remove it; without it gatewayd owns no route)", r.path, err)
	}
	if err := got.check(); err != nil {
		return nil, fmt.Errorf("reading the router record %s: %w", r.path, err)
	}
	got.Version = recordVersion
	got.path = r.path
	return &got, nil
}

func (r *record) check() error {
	if r.Version < 1 || r.Version > recordVersion {
		return fmt.Errorf("version %d, want %d at most", r.Version, recordVersion)
	}
	for i, rt := range r.Routes {
		if !rt.To.IsValid() || !rt.Via.IsValid() || rt.Interface == "" {
			return fmt.Errorf("route %d needs to, via and interface", i)
		}
	}
	for i, a := range r.Addresses {
		if !a.Address.Addr().Is4() || a.Interface == "" {
			return fmt.Errorf("address %d needs an IPv4 address and an interface", i)
		}
	}
	if r.Lease != nil {
		if _, err := r.Lease.lease(); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads the record without following a symbolic link.
func readFile(path string) ([]byte, error) {
	f, err := statedir.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// save writes the record atomically and durably (statedir.WriteFile).
func (r *record) save() error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := statedir.WriteFile(r.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving the router record: %w", err)
	}
	r.dirty = false
	return nil
}

// saveIfDirty saves the record when it changed: a Set with nothing to do
// writes no file.
func (r *record) saveIfDirty() error {
	if !r.dirty {
		return nil
	}
	return r.save()
}

func (r *record) owns(rt Route) bool { return slices.Contains(r.Routes, rt) }

// ownedTo returns the owned route to rt's destination, on any interface.
func (r *record) ownedTo(rt Route) (Route, bool) {
	for _, o := range r.Routes {
		if o.To == rt.To {
			return o, true
		}
	}
	return Route{}, false
}

func (r *record) forget(rt Route) {
	if r.owns(rt) {
		r.Routes = slices.DeleteFunc(r.Routes, func(o Route) bool { return o == rt })
		r.dirty = true
	}
}

func (r *record) remember(rt Route) {
	if !r.owns(rt) {
		r.Routes = append(r.Routes, rt)
		r.dirty = true
	}
}

func (r *record) forgetAddr(a ownedAddr) {
	if slices.Contains(r.Addresses, a) {
		r.Addresses = slices.DeleteFunc(r.Addresses, func(o ownedAddr) bool { return o == a })
		r.dirty = true
	}
}

func (r *record) rememberAddr(a ownedAddr) {
	if !slices.Contains(r.Addresses, a) {
		r.Addresses = append(r.Addresses, a)
		r.dirty = true
	}
}
