package statedir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// entries lists dir's names, to catch leftovers.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aliases.json")
	old := syscall.Umask(0o077) // the mode must not depend on it
	defer syscall.Umask(old)
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := WriteFile(path, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, path); got != content {
			t.Errorf("content %q, want %q", got, content)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o640 {
		t.Errorf("mode %v, want -rw-r-----", st.Mode())
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("directory holds %q, want only aliases.json", got)
	}
}

func TestWriteFileReplacesALinkWithoutWritingThroughIt(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "router.json")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("{}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, target); got != "precious\n" {
		t.Errorf("the link's target now holds %q", got)
	}
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		t.Errorf("%s after WriteFile: %v, %v; want a regular file", path, st, err)
	}
}

func TestWriteFileFailuresLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	// The rename fails: a directory is in the way.
	path := filepath.Join(dir, "leases")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("x"), 0o640)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile over a directory: %v, want an error naming %s", err, path)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "leases" {
		t.Errorf("directory holds %q after the failure, want only leases", got)
	}

	// The content cannot be produced: the old file stays.
	file := filepath.Join(dir, "log")
	if err := WriteFile(file, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = WriteFunc(file, 0o640, func(w io.Writer) error {
		fmt.Fprintln(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("WriteFunc whose fill fails: %v, want boom", err)
	}
	if got := readFile(t, file); got != "old\n" {
		t.Errorf("after a failed write the file holds %q", got)
	}
	if got := entries(t, dir); len(got) != 2 {
		t.Errorf("directory holds %q, want leases and log", got)
	}

	// No directory at all.
	if err := WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o640); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a[1].json")
	for _, name := range []string{".a[1].json.0123456789ab.tmp", ".a[1].json.notmine.tmp", ".other.json.0123456789ab.tmp", "a[1].json"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveTemps(path); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(entries(t, dir), " ")
	if want := ".a[1].json.notmine.tmp .other.json.0123456789ab.tmp a[1].json"; got != want {
		t.Errorf("after RemoveTemps: %s, want %s", got, want)
	}
}

func TestOpenRefusesALink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	_, err := Open(link, os.O_RDONLY, 0)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), link) {
		t.Errorf("Open(link): %v, want a refusal naming the link", err)
	}
	f, err := Open(target, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	release, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state directory made with %v (%v), want 0700", st.Mode(), err)
	}
	path := filepath.Join(dir, "lock")
	if got := readFile(t, path); got != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file holds %q, want our pid", got)
	}
	// flock conflicts between open files, even in one process.
	_, err = Lock(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("the state directory is in use by another gatewayd (pid %d holds %s)", os.Getpid(), path)
	if err.Error() != want {
		t.Errorf("second Lock:\n got %q\nwant %q", err, want)
	}
	release()
	release2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	release2()
}

func TestLockRefusesALink(t *testing.T) {
	for _, tt := range []struct{ name, target string }{
		{"to a file", "precious\n"},
		{"to nothing", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(t.TempDir(), "passwd")
			if tt.target != "" {
				if err := os.WriteFile(target, []byte(tt.target), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(target, filepath.Join(dir, "lock")); err != nil {
				t.Fatal(err)
			}
			release, err := Lock(dir)
			if err == nil {
				release()
				t.Fatal("Lock through a symbolic link succeeded")
			}
			if !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("error %q does not say why", err)
			}
			b, rerr := os.ReadFile(target)
			switch {
			case tt.target == "" && !errors.Is(rerr, os.ErrNotExist):
				t.Errorf("the link's target was created: %q, %v", b, rerr)
			case tt.target != "" && string(b) != tt.target:
				t.Errorf("the link's target now holds %q", b)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	mk := func(t *testing.T, mode os.FileMode, uid int) string {
		dir := filepath.Join(t.TempDir(), "state")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, -1); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the directory away")
	}
	for _, tt := range []struct {
		name string
		mode os.FileMode
		uid  int
		want string // "" passes
	}{
		{"root, 0700", 0o700, 0, ""},
		{"root, 0755", 0o755, 0, ""},
		{"world-writable", 0o777, 0, "writable by its group or by others (mode -rwxrwxrwx): they could change gatewayd's state; run chmod go-w"},
		{"sticky and world-writable, like /tmp", os.ModeSticky | 0o777, 0, "writable by its group or by others"},
		{"group-writable", 0o770, 0, "writable by its group or by others (mode -rwxrwx---)"},
		{"owned by nobody", 0o700, 65534, "is owned by uid 65534, not root: another user could change gatewayd's state; run chown root:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := mk(t, tt.mode, tt.uid)
			err := Check(dir)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir)):
				t.Errorf("Check: %v, want an error naming %s containing %q", err, dir, tt.want)
			}
		})
	}
	dir := t.TempDir()
	if err := Check(filepath.Join(dir, "not-yet")); err != nil {
		t.Errorf("Check of a directory Lock will create: %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Check(a file): %v", err)
	}
}
