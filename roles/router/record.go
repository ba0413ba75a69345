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

	"gatewayd/statedir"
)

// recordFile is the record of what the router role changed, in the state dir.
const recordFile = "router.json"

const recordVersion = 1

// changedSysctl is a sysctl the role changed: Was is the value it found, Set
// the value it wrote.
type changedSysctl struct {
	Key string `json:"key"`
	Was string `json:"was"`
	Set string `json:"set"`
}

// record is the durable list of routes the role added and sysctls it
// changed, written after every change so a restart knows what is its own.
type record struct {
	Version int             `json:"version"`
	Routes  []Route         `json:"routes"`
	Sysctls []changedSysctl `json:"sysctls"`

	path string
}

func loadRecord(dir string) (*record, error) {
	if dir == "" {
		return nil, errors.New("no state directory to record owned routes in")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
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
	if got.Version != recordVersion {
		return nil, fmt.Errorf("reading the router record %s: version %d, want %d", r.path, got.Version, recordVersion)
	}
	for i, rt := range got.Routes {
		if !rt.To.IsValid() || !rt.Via.IsValid() || rt.Interface == "" {
			return nil, fmt.Errorf("reading the router record %s: route %d needs to, via and interface", r.path, i)
		}
	}
	got.path = r.path
	return &got, nil
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
	return nil
}

func (r *record) owns(rt Route) bool {
	for _, o := range r.Routes {
		if o == rt {
			return true
		}
	}
	return false
}

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
	out := r.Routes[:0]
	for _, o := range r.Routes {
		if o != rt {
			out = append(out, o)
		}
	}
	r.Routes = out
}

func (r *record) remember(rt Route) {
	if !r.owns(rt) {
		r.Routes = append(r.Routes, rt)
	}
}
