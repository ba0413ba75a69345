package aliases

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gatewayd/statedir"
)

// recordFile is the name of the record of owned addresses in the state dir.
const recordFile = "aliases.json"

// recordVersion is bumped when the file's meaning changes. Version 1 had
// no history ("held"); it is read, and rewritten as version 2.
const recordVersion = 2

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
	// Held is, per interface, every address/length the configuration asked
	// gatewayd to hold there (Set, Adopt) since it was last no longer
	// wanted and no longer owned. Every entry of Addresses is in it; a
	// record where one is not was not written by gatewayd.
	Held map[string][]netip.Prefix `json:"held"`
}

// record is the durable list of addresses gatewayd owns, on every interface
// it has used: entries for other interfaces are kept as they are, so
// switching the NIC in the config never makes gatewayd forget what it left
// on the old one.
type record struct {
	path  string
	addrs map[addrKey]ownedAddr
	held  map[addrKey]bool // recordJSON.Held
}

// addrKey names one address/length on one interface.
type addrKey struct {
	Interface string
	Prefix    netip.Prefix
}

// loadRecord reads the record in dir. The directory is not created here:
// statedir.Lock creates it (mode 0700), and whoever opens a NIC holds that
// lock first.
func loadRecord(dir string) (*record, error) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("state directory %s does not exist (taking its lock creates it): %w", dir, err)
	case err != nil:
		return nil, fmt.Errorf("reading state directory %s: %w", dir, err)
	case !st.IsDir():
		return nil, fmt.Errorf("state directory %s is not a directory", dir)
	}
	r := &record{path: filepath.Join(dir, recordFile), addrs: map[addrKey]ownedAddr{}, held: map[addrKey]bool{}}
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
	rj, err := parseRecord(b)
	if err != nil {
		return nil, fmt.Errorf("reading owned-address record %s: %w (fix or remove the file; without it gatewayd treats every address on the NIC as not its own: then `gatewayd adopt` takes back those that match the config exactly)", r.path, err)
	}
	for _, a := range rj.Addresses {
		r.addrs[addrKey{a.Interface, a.Prefix}] = a
	}
	for ifname, held := range rj.Held {
		for _, p := range held {
			r.held[addrKey{ifname, p}] = true
		}
	}
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

// parseRecord reads and checks the file. Every entry must be one gatewayd
// could have written: a label starting with its interface name, and an
// address/length in the history of what the configuration asked it to
// hold there. A version 1 file has no history: its entries become the
// history, and their labels must be `<interface>:<something>`, the only
// labels a version 1 gatewayd could give from a configuration.
func parseRecord(b []byte) (recordJSON, error) {
	var rj recordJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rj); err != nil {
		return rj, err
	}
	switch rj.Version {
	case recordVersion:
	case 1:
		if rj.Held != nil {
			return rj, errors.New(`version 1 has no "held"`)
		}
	default:
		return rj, fmt.Errorf("version %d, want %d", rj.Version, recordVersion)
	}
	if rj.Held == nil {
		rj.Held = map[string][]netip.Prefix{}
	}
	held := map[addrKey]bool{}
	for ifname, ps := range rj.Held {
		for _, p := range ps {
			held[addrKey{ifname, p}] = true
		}
	}
	for i, a := range rj.Addresses {
		switch {
		case a.Interface == "" || !a.Prefix.IsValid():
			return rj, fmt.Errorf("entry %d: interface and prefix are required", i)
		case len(a.Label) > maxLabel || !strings.HasPrefix(a.Label, a.Interface):
			return rj, fmt.Errorf("entry %d (%s on %s): label %q is not one gatewayd gives on %s", i, a.Prefix, a.Interface, a.Label, a.Interface)
		case rj.Version == 1 && !strings.HasPrefix(a.Label, a.Interface+":"):
			return rj, fmt.Errorf("entry %d (%s on %s): label %q is not one gatewayd gave on %s", i, a.Prefix, a.Interface, a.Label, a.Interface)
		case rj.Version == 1:
			rj.Held[a.Interface] = append(rj.Held[a.Interface], a.Prefix)
		case !held[addrKey{a.Interface, a.Prefix}]:
			return rj, fmt.Errorf("entry %d: %s on %s is not among the addresses the configuration ever asked gatewayd to hold there (\"held\"): the file was not written by gatewayd", i, a.Prefix, a.Interface)
		}
	}
	return rj, nil
}

// owns reports whether gatewayd added p to ifname.
func (r *record) owns(ifname string, p netip.Prefix) (ownedAddr, bool) {
	e, ok := r.addrs[addrKey{ifname, p}]
	return e, ok
}

// put records a as added to ifname, and as held there.
func (r *record) put(ifname string, a Alias) {
	k := addrKey{ifname, a.Prefix}
	r.held[k] = true
	r.addrs[k] = ownedAddr{Interface: ifname, Prefix: a.Prefix, Label: a.Label, Name: a.Name}
}

func (r *record) remove(ifname string, p netip.Prefix) { delete(r.addrs, addrKey{ifname, p}) }

// hold makes the history of ifname what the configuration asks for now
// plus what is still owned there, and reports whether that changed it.
// Nothing else needs remembering: an entry can only come from a desired
// alias, and stays held while it is owned.
func (r *record) hold(ifname string, desired []Alias) bool {
	held := map[addrKey]bool{}
	for _, a := range desired {
		held[addrKey{ifname, a.Prefix}] = true
	}
	for k := range r.addrs {
		if k.Interface == ifname {
			held[k] = true
		}
	}
	changed := false
	for k := range r.held {
		if k.Interface == ifname && !held[k] {
			delete(r.held, k)
			changed = true
		}
	}
	for k := range held {
		if !r.held[k] {
			r.held[k] = true
			changed = true
		}
	}
	return changed
}

// on returns the entries for ifname, by address.
func (r *record) on(ifname string) []ownedAddr {
	var out []ownedAddr
	for k, a := range r.addrs {
		if k.Interface == ifname {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y ownedAddr) int { return x.Prefix.Compare(y.Prefix) })
	return out
}

// save writes the record atomically: a crash leaves the old or the new
// file, never a torn one.
func (r *record) save() error {
	rj := recordJSON{Version: recordVersion, Addresses: []ownedAddr{}, Held: map[string][]netip.Prefix{}}
	for _, a := range r.addrs {
		rj.Addresses = append(rj.Addresses, a)
	}
	slices.SortFunc(rj.Addresses, func(x, y ownedAddr) int {
		return cmp.Or(cmp.Compare(x.Interface, y.Interface), x.Prefix.Compare(y.Prefix))
	})
	for k := range r.held {
		rj.Held[k.Interface] = append(rj.Held[k.Interface], k.Prefix)
	}
	for _, ps := range rj.Held {
		slices.SortFunc(ps, netip.Prefix.Compare)
	}
	b, err := json.MarshalIndent(rj, "", "  ")
	if err != nil {
		return err
	}
	if err := statedir.WriteFile(r.path, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("writing owned-address record: %w", err)
	}
	return nil
}
