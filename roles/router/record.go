package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	b, err := os.ReadFile(r.path)
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

// save writes the record atomically: a temporary file, synced, renamed over
// the old one, and the directory synced.
func (r *record) save() error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(r.path)
	tmp, err := os.CreateTemp(dir, recordFile+".*")
	if err != nil {
		return fmt.Errorf("saving the router record: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), r.path)
	}
	if err != nil {
		return fmt.Errorf("saving the router record %s: %w", r.path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
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
