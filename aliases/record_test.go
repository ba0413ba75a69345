package aliases

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.addrs) != 0 {
		t.Fatalf("a missing record should be empty, got %+v", r.addrs)
	}
	r.put("eth1", al("router", "192.168.1.1/24", "eth1:0"))
	r.put("eth1", al("dns", "192.168.1.3/24", "eth1:2"))
	r.put("eth0", al("old", "10.9.9.9/24", "eth0:0"))
	r.put("eth1", al("router", "192.168.1.1/24", "eth1:5")) // replaces
	r.remove("eth1", pfx("192.168.1.3/24"))
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	r2, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := r2.owns("eth1", pfx("192.168.1.1/24")); !ok || e.Label != "eth1:5" || e.Name != "router" {
		t.Errorf("router not recorded as eth1:5: %+v %v", e, ok)
	}
	if _, ok := r2.owns("eth1", pfx("192.168.1.3/24")); ok {
		t.Error("removed dns still recorded")
	}
	if _, ok := r2.owns("eth1", pfx("192.168.1.1/16")); ok {
		t.Error("another prefix length of an owned address counts as owned")
	}
	if _, ok := r2.owns("eth1", pfx("10.9.9.9/24")); ok {
		t.Error("an address owned on eth0 counts as owned on eth1")
	}
	if got := len(r2.on("eth0")); got != 1 {
		t.Errorf("entries for eth0: %d, want 1 (kept)", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

// TestRecordMissingDir: the state directory is statedir.Lock's to create
// (mode 0700), and the daemon and the offline commands take the lock before
// they open the NIC; a directory missing here is an error naming it, and
// is not created with some other mode.
func TestRecordMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	_, err := loadRecord(dir)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("loadRecord of a missing directory: %v, want an error naming %s", err, dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the missing state directory was created (stat: %v)", err)
	}
}

func TestRecordBadFile(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":      "{",
		"wrong version": `{"version": 9, "addresses": []}`,
		"bad prefix":    `{"version": 1, "addresses": [{"interface": "eth1", "prefix": "300.1.1.1/24", "label": "eth1:0"}]}`,
		"no interface":  `{"version": 1, "addresses": [{"prefix": "10.0.0.1/24", "label": "eth1:0"}]}`,
		"unknown key":   `{"version": 1, "addresses": [], "owner": "me"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, recordFile)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadRecord(dir)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("error = %v, want one naming %s", err, path)
			}
		})
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"version": 1, "addresses": [{"interface": "eth1", "prefix": "10.0.0.1/24", "label": "eth1:0", "name": "lab"}]}`))
	f.Add([]byte(`{"version": 1, "addresses": null}`))
	f.Add([]byte(`{"version": 2, "addresses": [{"interface": "eth1", "prefix": "10.0.0.1/24", "label": "eth1:0"}], "held": {"eth1": ["10.0.0.1/24"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rj, err := parseRecord(b)
		if err != nil {
			return
		}
		for _, a := range rj.Addresses {
			if a.Interface == "" || !a.Prefix.IsValid() {
				t.Fatalf("accepted an entry without interface or prefix: %+v", a)
			}
			if !slices.Contains(rj.Held[a.Interface], a.Prefix) {
				t.Fatalf("accepted an entry outside the history: %+v, held %v", a, rj.Held)
			}
		}
	})
}
