package dhcp

import (
	"errors"
	"reflect"
	"sync"
	"testing"
)

// faults makes the store's file operations fail on demand: each named
// operation fails as many more times as its count says.
type faults struct {
	mu   sync.Mutex
	left map[string]int
}

var errInjected = errors.New("injected fault")

func (f *faults) set(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left[op] = n
}

func (f *faults) fail(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.left[op] > 0 {
		f.left[op]--
		return errInjected
	}
	return nil
}

func faultyStore(t *testing.T, dir string) (*store, *faults) {
	t.Helper()
	s, _ := openTestStore(t, dir)
	f := &faults{left: map[string]int{}}
	s.fault = f.fail
	return s, f
}

// A compaction renames the new log into place; when the directory sync or
// the reopen after it fails, no batch may be synced into the old, unlinked
// file and reported written: every batch fails until the reopen succeeds,
// and then the records go to the new file and survive a restart.
func TestStoreCompactionReopenFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults map[string]int // "replace": the directory sync after the rename
	}{
		{"reopen", map[string]int{"reopen": 2}},
		{"directory sync", map[string]int{"replace": 1, "reopen": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, f := faultyStore(t, dir)
			for i := range 3 {
				if err := s.commit([]*binding{testBinding(i)}); err != nil {
					t.Fatal(err)
				}
			}
			for op, n := range tc.faults {
				f.set(op, n)
			}
			// On the writer goroutine, whose the file is, as a compaction.
			rewritten := make(chan error, 1)
			s.append(nil, func(error) { rewritten <- s.rewrite([]*binding{testBinding(0), testBinding(1), testBinding(2)}) })
			if err := <-rewritten; err == nil {
				t.Fatal("the rewrite reports success although it could not reopen the log")
			}
			// The reopen fails once more: this batch must fail.
			if err := s.commit([]*binding{testBinding(5)}); err == nil {
				t.Fatalf("a batch after a failed reopen reports written")
			}
			if err := s.commit([]*binding{testBinding(6)}); err != nil {
				t.Fatalf("after the reopen succeeds: %v", err)
			}
			if st := s.status(); st.FailedWrites == 0 {
				t.Errorf("no failed write counted: %+v", st)
			}
			if err := s.commit([]*binding{testBinding(7)}); err != nil {
				t.Fatal(err)
			}
			s.close()
			s, binds := openTestStore(t, dir)
			defer s.close()
			for _, i := range []int{0, 1, 2, 6, 7} {
				if !reflect.DeepEqual(binds[testBinding(i).addr], testBinding(i)) {
					t.Errorf("binding %d written after the compaction is lost at restart: %+v", i, binds[testBinding(i).addr])
				}
			}
			if b := binds[testBinding(5).addr]; b != nil {
				t.Errorf("the failed batch's binding is in the log: %+v", b)
			}
			if st := s.status(); st.Recovered != "" {
				t.Errorf("the log needed repair: %q", st.Recovered)
			}
		})
	}
}

// A failed batch whose cut fails must not stay in the file: whole records
// of it past the good end would win over the older ones at restart. The
// next batch fails until the cut succeeds.
func TestStoreFailedCutIsOwed(t *testing.T) {
	dir := t.TempDir()
	s, f := faultyStore(t, dir)
	var durable []*binding
	for i := range 3 {
		b := testBinding(i)
		durable = append(durable, b)
		if err := s.commit([]*binding{b}); err != nil {
			t.Fatal(err)
		}
	}
	// A long batch is written but not synced, and cannot be cut off.
	var changed []*binding
	for i := range 3 {
		b := testBinding(i)
		b.hostname, b.expires = "rolled-back-with-a-long-name", b.expires+100
		changed = append(changed, b)
	}
	f.set("sync", 1)
	f.set("truncate", 2)
	if err := s.commit(changed); err == nil {
		t.Fatal("a batch whose sync failed reports written")
	}
	// The cut fails again: so does the next batch, written nowhere.
	if err := s.commit([]*binding{testBinding(9)}); err == nil {
		t.Fatal("a batch written after a failed cut reports written")
	}
	// The cut succeeds now: a short batch follows the good records.
	if err := s.commit([]*binding{testBinding(8)}); err != nil {
		t.Fatal(err)
	}
	s.close()
	s, binds := openTestStore(t, dir)
	defer s.close()
	for _, b := range durable {
		if got := binds[b.addr]; !reflect.DeepEqual(got, b) {
			t.Errorf("a rolled-back record came back at restart: %+v, want %+v", got, b)
		}
	}
	if binds[testBinding(9).addr] != nil || !reflect.DeepEqual(binds[testBinding(8).addr], testBinding(8)) {
		t.Errorf("after the cut: %d bindings", len(binds))
	}
	if st := s.status(); st.Recovered != "" {
		t.Errorf("the log needed repair: %q", st.Recovered)
	}
}
