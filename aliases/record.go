package aliases

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"gatewayd/statedir"
)

// recordFile is the name of the record of owned addresses in the state dir.
const recordFile = "aliases.json"

// recordVersion is bumped when the file's meaning changes.
const recordVersion = 1

// ownedAddr is one address gatewayd added and has not removed since.
type ownedAddr struct {
	Interface string       `json:"interface"`
	Prefix    netip.Prefix `json:"prefix"`
	Label     string       `json:"label"`
	Name      string       `json:"name,omitempty"`
}

type recordJSON struct {
	Version   int         `json:"version"`
	Addresses []ownedAddr `json:"addresses"`
}

// record is the durable list of addresses gatewayd owns, on every interface
// it has used: entries for other interfaces are kept as they are, so
// switching the NIC in the config never makes gatewayd forget what it left
// on the old one.
type record struct {
	path  string
	addrs []ownedAddr
}

func loadRecord(dir string) (*record, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	r := &record{path: filepath.Join(dir, recordFile)}
	// The daemon holds the state directory's lock: no write is in flight.
	if err := statedir.RemoveTemps(r.path); err != nil {
		return nil, err
	}
	b, err := readRecord(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading owned-address record %s: %w", r.path, err)
	}
	addrs, err := parseRecord(b)
	if err != nil {
		return nil, fmt.Errorf("reading owned-address record %s: %w (fix or remove the file; without it gatewayd treats every address on the NIC as not its own)", r.path, err)
	}
	r.addrs = addrs
	return r, nil
}

// readRecord reads the file without following a symbolic link.
func readRecord(path string) ([]byte, error) {
	f, err := statedir.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func parseRecord(b []byte) ([]ownedAddr, error) {
	var rj recordJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rj); err != nil {
		return nil, err
	}
	if rj.Version != recordVersion {
		return nil, fmt.Errorf("version %d, want %d", rj.Version, recordVersion)
	}
	for i, a := range rj.Addresses {
		if a.Interface == "" || !a.Prefix.IsValid() {
			return nil, fmt.Errorf("entry %d: interface and prefix are required", i)
		}
	}
	return rj.Addresses, nil
}

func (r *record) find(ifname string, p netip.Prefix) int {
	return slices.IndexFunc(r.addrs, func(a ownedAddr) bool { return a.Interface == ifname && a.Prefix == p })
}

// owns reports whether gatewayd added p to ifname.
func (r *record) owns(ifname string, p netip.Prefix) (ownedAddr, bool) {
	if i := r.find(ifname, p); i >= 0 {
		return r.addrs[i], true
	}
	return ownedAddr{}, false
}

func (r *record) put(ifname string, a Alias) {
	e := ownedAddr{Interface: ifname, Prefix: a.Prefix, Label: a.Label, Name: a.Name}
	if i := r.find(ifname, a.Prefix); i >= 0 {
		r.addrs[i] = e
		return
	}
	r.addrs = append(r.addrs, e)
}

func (r *record) remove(ifname string, p netip.Prefix) {
	if i := r.find(ifname, p); i >= 0 {
		r.addrs = slices.Delete(r.addrs, i, i+1)
	}
}

// on returns the entries for ifname.
func (r *record) on(ifname string) []ownedAddr {
	var out []ownedAddr
	for _, a := range r.addrs {
		if a.Interface == ifname {
			out = append(out, a)
		}
	}
	return out
}

// save writes the record atomically: a crash leaves the old or the new
// file, never a torn one.
func (r *record) save() error {
	addrs := r.addrs
	if addrs == nil {
		addrs = []ownedAddr{}
	}
	b, err := json.MarshalIndent(recordJSON{Version: recordVersion, Addresses: addrs}, "", "  ")
	if err != nil {
		return err
	}
	if err := statedir.WriteFile(r.path, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("writing owned-address record: %w", err)
	}
	return nil
}
