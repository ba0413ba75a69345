package dhcp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// records captures log records, like lab.Logger but kept for checks.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}

// tee sends records to two handlers.
type tee [2]slog.Handler

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	return t[0].Enabled(ctx, l) || t[1].Enabled(ctx, l)
}
func (t tee) WithAttrs(a []slog.Attr) slog.Handler {
	return tee{t[0].WithAttrs(a), t[1].WithAttrs(a)}
}
func (t tee) WithGroup(g string) slog.Handler { return tee{t[0].WithGroup(g), t[1].WithGroup(g)} }
func (t tee) Handle(ctx context.Context, r slog.Record) error {
	return errors.Join(t[0].Handle(ctx, r.Clone()), t[1].Handle(ctx, r))
}

// find returns the attributes of the records whose message contains msg.
func (r *records) find(msg string) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.list {
		if !strings.Contains(rec.Message, msg) {
			continue
		}
		m := map[string]string{"level": rec.Level.String(), "msg": rec.Message}
		rec.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

func (r *records) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.list {
		b.WriteString(rec.Level.String() + " " + rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		b.WriteByte('\n')
	}
	return b.String()
}

// logWith is a log of n good records (testBinding(0..n-1)), as bytes.
func logWith(n int) []byte {
	var b []byte
	for i := range n {
		b = encodeRecord(b, testBinding(i))
	}
	return b
}

// openLog writes data as the lease log of a fresh directory and opens it.
func openLog(t *testing.T, data []byte, o storeOptions) (dir string, s *store, binds map[uint32]*binding, logs *records, err error) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, logName), data, 0o640); err != nil {
		t.Fatal(err)
	}
	logs = &records{}
	s, binds, err = openStore(dir, slog.New(logs), o)
	if err == nil {
		t.Cleanup(func() { s.close() })
	}
	return dir, s, binds, logs, err
}

func backups(t *testing.T, dir string) []string {
	t.Helper()
	list, err := filepath.Glob(filepath.Join(dir, logName+".damaged-*"))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLeaseLogFramingIsRead: CRLF and other framing a hand edit or a copy
// through another system leaves is read, not cut, and nothing is backed up.
func TestLeaseLogFramingIsRead(t *testing.T) {
	good := logWith(1000)
	crlf := bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n"))
	lines := strings.SplitAfter(string(logWith(4)), "\n")
	tests := []struct {
		name  string
		data  []byte
		n     int
		frame string
	}{
		{"CRLF, 1000 records", crlf, 1000, "1000 CRLF line endings"},
		{"CR only", bytes.ReplaceAll(good, []byte("\n"), []byte("\r")), 1000, "1000 CR line endings"},
		{"trailing spaces", []byte(strings.ReplaceAll(string(logWith(4)), "\n", "  \t\n")), 4, "4 spaces around records"},
		{"blank lines", []byte("\n\n" + lines[0] + "\n" + lines[1] + lines[2] + "\n   \n" + lines[3] + "\n\n"), 4, "blank lines"},
		{"no final newline", bytes.TrimSuffix(logWith(4), []byte("\n")), 4, "no newline at the end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, s, binds, logs, err := openLog(t, tc.data, storeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(binds) != tc.n || s.status().Recovered != "" || len(backups(t, dir)) != 0 {
				t.Errorf("%d bindings, recovered %q, backups %v; want %d, nothing repaired", len(binds), s.status().Recovered, backups(t, dir), tc.n)
			}
			if got := logs.find("framing"); len(got) != 1 || !strings.Contains(got[0]["framing"], tc.frame) {
				t.Errorf("framing not reported as %q:\n%s", tc.frame, logs)
			}
			path := filepath.Join(dir, logName)
			want := tc.data
			if tc.name == "no final newline" {
				want = append(append([]byte(nil), tc.data...), '\n') // the one write: a newline
			}
			if got := readFile(t, path); !bytes.Equal(got, want) {
				t.Errorf("the log was changed:\n%q\nwant\n%q", got, want)
			}
			if err := s.commit([]*binding{testBinding(tc.n)}); err != nil {
				t.Fatal(err)
			}
			s.close()
			_, binds, err = openStore(dir, quietLog(), storeOptions{})
			if err != nil || len(binds) != tc.n+1 {
				t.Fatalf("after an append: %d bindings, %v", len(binds), err)
			}
		})
	}
}

// TestLeaseLogDamageKeepsTheOriginal: every repair keeps what it removes,
// and says so at WARN for what a crash leaves, at ERROR beyond that.
func TestLeaseLogDamageKeepsTheOriginal(t *testing.T) {
	good := logWith(10)
	half := len(logWith(5))     // a line boundary
	bad := func(i int) string { // a record with a wrong CRC
		line := encodeRecord(nil, testBinding(i))
		line[0] ^= 1
		return string(line)
	}
	tests := []struct {
		name   string
		data   string
		kept   int
		level  string
		whole  bool // the backup is the whole original (a rewrite), else the cut tail
		tailAt int
	}{
		{"a record torn by a crash", string(good) + "1234abcd 192.0.2.1", 10, "WARN", false, len(good)},
		{"NUL bytes a crash left", string(good) + strings.Repeat("\x00", 8192), 10, "WARN", false, len(good)},
		{"one damaged record in the middle", string(good[:half]) + bad(20) + string(good[half:]), 10, "WARN", true, 0},
		{"three records lost at the end", string(good) + bad(11) + bad(12) + bad(13), 10, "ERROR", false, len(good)},
		{"garbage in the middle", string(good[:half]) + "garbage\nmore garbage\n" + string(good[half:]), 10, "ERROR", true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, s, binds, logs, err := openLog(t, []byte(tc.data), storeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(binds) != tc.kept {
				t.Errorf("%d bindings kept, want %d", len(binds), tc.kept)
			}
			list := backups(t, dir)
			if len(list) != 1 {
				t.Fatalf("backups %v, want one", list)
			}
			want := []byte(tc.data)
			if !tc.whole {
				want = want[tc.tailAt:]
			}
			if got := readFile(t, list[0]); !bytes.Equal(got, want) {
				t.Errorf("backup holds %q, want %q", got, want)
			}
			st := s.status()
			if st.Backup != list[0] || !strings.Contains(st.Recovered, list[0]) {
				t.Errorf("status %+v does not name the backup %s", st, list[0])
			}
			lines := logs.find("lease log")
			var rep map[string]string
			for _, l := range lines {
				if l["backup"] != "" {
					rep = l
				}
			}
			if rep == nil || rep["level"] != tc.level || rep["backup"] != list[0] || rep["kept_records"] != "10" || rep["cut_bytes"] == "" {
				t.Errorf("repair logged as %v, want %s with cut_bytes, kept_records=10 and the backup:\n%s", rep, tc.level, logs)
			}
			// The repaired log reads clean and takes appends.
			if err := s.commit([]*binding{testBinding(30)}); err != nil {
				t.Fatal(err)
			}
			s.close()
			s2, binds, err := openStore(dir, quietLog(), storeOptions{})
			if err != nil || len(binds) != 11 || s2.status().Recovered != "" {
				t.Fatalf("reopened: %d bindings, %v, %+v", len(binds), err, s2.status())
			}
			s2.close()
		})
	}
}

// TestLeaseLogHeavyLossRefused: a log that would keep under half of what
// it appears to hold is refused and left alone, unless the loss is
// accepted.
func TestLeaseLogHeavyLossRefused(t *testing.T) {
	data := logWith(10)
	for i := 10; i < 40; i++ {
		line := encodeRecord(nil, testBinding(i))
		line[3] ^= 1
		data = append(data, line...)
	}
	dir, _, _, _, err := openLog(t, data, storeOptions{})
	if !errors.Is(err, ErrLeaseLoss) || !strings.Contains(err.Error(), "10 of the 40") || !strings.Contains(err.Error(), "--accept-lease-loss") {
		t.Fatalf("open: %v, want ErrLeaseLoss naming 10 of the 40 records and the way out", err)
	}
	if got := readFile(t, filepath.Join(dir, logName)); !bytes.Equal(got, data) || len(backups(t, dir)) != 0 {
		t.Error("a refused log was changed or backed up")
	}
	s, binds, err := openStore(dir, quietLog(), storeOptions{acceptLoss: true})
	if err != nil || len(binds) != 10 || len(backups(t, dir)) != 1 {
		t.Fatalf("accepting the loss: %d bindings, %v, backups %v", len(binds), err, backups(t, dir))
	}
	s.close()
	// A crash during the very first write is no heavy loss.
	if _, _, _, _, err := openLog(t, []byte("1234abcd 192.0.2"), storeOptions{}); err != nil {
		t.Errorf("a torn first record refused: %v", err)
	}
}

// TestLeaseLogReadOnly: the read-only store (leases, export with the
// daemon stopped) leaves a damaged log byte-identical and creates nothing.
func TestLeaseLogReadOnly(t *testing.T) {
	data := append(logWith(5), "deadbeef 192.0.2.1 a 1 - - -\n"...)
	dir, s, binds, _, err := openLog(t, data, storeOptions{readOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, logName)
	before, _ := os.Stat(path)
	if len(binds) != 5 || !strings.Contains(s.status().Recovered, "not repaired") || !s.status().ReadOnly {
		t.Errorf("%d bindings, status %+v", len(binds), s.status())
	}
	if err := s.commit([]*binding{testBinding(9)}); !errors.Is(err, errReadOnly) {
		t.Errorf("a write to a read-only store: %v", err)
	}
	s.close()
	entries, _ := os.ReadDir(dir)
	after, _ := os.Stat(path)
	if got := readFile(t, path); !bytes.Equal(got, data) || len(entries) != 1 || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("read-only open changed the directory: %v, log changed %v", entries, !bytes.Equal(got, data))
	}

	// Through the Server: listing works, changing does not, and a missing
	// directory is not created.
	state := t.TempDir()
	os.MkdirAll(filepath.Join(state, "dhcp"), 0o750)
	os.WriteFile(filepath.Join(state, "dhcp", logName), data, 0o640)
	srv, err := New(Options{StateDir: state, Logger: quietLog(), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.now = func() time.Time { return time.Unix(1_700_000_000, 0) }
	if got := srv.Leases(); len(got) != 5 {
		t.Errorf("read-only leases: %d, want 5", len(got))
	}
	if err := srv.Set(t.Context(), testConfig()); err == nil {
		t.Error("Set on a read-only role succeeded")
	}
	if _, err := srv.Import(nil); err == nil {
		t.Error("Import on a read-only role succeeded")
	}
	if _, err := srv.Delete(u32Addr(testBinding(1).addr), nil); err == nil {
		t.Error("Delete on a read-only role succeeded")
	}
	srv.Close()
	if got := readFile(t, filepath.Join(state, "dhcp", logName)); !bytes.Equal(got, data) {
		t.Error("the read-only Server changed the log")
	}
	if _, err := os.Stat(filepath.Join(state, "dhcp", "lock")); err == nil {
		t.Error("the read-only Server took the lock file")
	}
	none := filepath.Join(t.TempDir(), "none")
	srv, err = New(Options{StateDir: none, Logger: quietLog(), ReadOnly: true})
	if err != nil || len(srv.Leases()) != 0 {
		t.Fatalf("read-only on no state: %v", err)
	}
	srv.Close()
	if _, err := os.Stat(none); err == nil {
		t.Error("a read-only Server created the state directory")
	}
}

// FuzzReadLog: no record present in the input is lost unless the file is
// reported damaged, and nothing is made up. A record is present when a line
// of the input (split at CR and LF, spaces around it trimmed) decodes.
func FuzzReadLog(f *testing.F) {
	f.Add(logWith(3))
	f.Add(bytes.ReplaceAll(logWith(3), []byte("\n"), []byte("\r\n")))
	f.Add(append(logWith(2), "1234abcd 192.0.2"...))
	f.Add(append(logWith(2), encodeRecord(nil, &binding{addr: testBinding(1).addr, state: bindDeleted})...))
	f.Add([]byte("\x00\x00\n" + string(logWith(1)) + "  \n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		binds, rep, err := readLog(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		want := map[uint32]*binding{}
		for _, line := range bytes.FieldsFunc(data, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if b, ok := decodeRecord(bytes.TrimSpace(line)); ok {
				if b.state == bindDeleted {
					delete(want, b.addr)
				} else {
					want[b.addr] = b
				}
			}
		}
		if !rep.damaged() && !reflect.DeepEqual(binds, want) {
			t.Fatalf("%q read as %d bindings without damage reported, want %d", data, len(binds), len(want))
		}
		for addr, b := range binds {
			if _, ok := decodeRecord(encodeRecord(nil, b)); !ok || b.addr != addr {
				t.Fatalf("made up binding %+v", b)
			}
		}
		if rep.records > 0 && rep.good > rep.size || rep.midLines+rep.tailLines < rep.zeroLines {
			t.Fatalf("inconsistent report %+v", rep)
		}
	})
}
