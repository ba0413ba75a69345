package dhcp

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func testBinding(i int) *binding {
	return &binding{
		addr: addrU32(u32Addr(0xc0000264 + uint32(i))), state: bindActive, expires: 1_700_003_600 + int64(i),
		mac: string([]byte{2, 0, 0, 0, 1, byte(i)}), hostname: []string{"", "pc"}[i%2],
	}
}

// commit appends and waits until the records are on disk.
func (s *store) commit(recs []*binding) error {
	ch := make(chan error, 1)
	s.append(recs, func(err error) { ch <- err })
	return <-ch
}

func openTestStore(t *testing.T, dir string) (*store, map[uint32]*binding) {
	t.Helper()
	s, binds, err := openStore(dir, quietLog(), storeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s, binds
}

func TestRecordRoundTrip(t *testing.T) {
	cases := []*binding{
		testBinding(1),
		{addr: 0x0a000001, state: bindDeclined, expires: 5},
		{addr: 0x0a000002, state: bindExpired, expires: 0, clientID: "\x01abc def", mac: "\xff\x00", hostname: "x", static: true},
	}
	for _, b := range cases {
		line := encodeRecord(nil, b)
		got, ok := decodeRecord(line)
		if !ok || !reflect.DeepEqual(got, b) {
			t.Errorf("round trip of %+v: got %+v ok=%v (line %q)", b, got, ok, line)
		}
		for i := range line[:len(line)-1] { // every one-byte change is caught
			bad := append([]byte(nil), line...)
			bad[i] ^= 0x20
			if got, ok := decodeRecord(bad); ok && !reflect.DeepEqual(got, b) {
				t.Errorf("damaged line %q accepted as %+v", bad, got)
			}
		}
	}
}

func TestStoreReopen(t *testing.T) {
	dir := t.TempDir()
	s, binds := openTestStore(t, dir)
	if len(binds) != 0 {
		t.Fatalf("new log has %d bindings", len(binds))
	}
	for i := range 5 {
		if err := s.commit([]*binding{testBinding(i)}); err != nil {
			t.Fatal(err)
		}
	}
	upd := testBinding(2)
	upd.state = bindExpired
	if err := s.commit([]*binding{upd}); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if err := s.commit([]*binding{testBinding(9)}); err != errStoreClosed {
		t.Errorf("commit after close: %v", err)
	}
	s, binds = openTestStore(t, dir)
	defer s.close()
	if len(binds) != 5 || binds[upd.addr].state != bindExpired || !reflect.DeepEqual(binds[testBinding(4).addr], testBinding(4)) {
		t.Errorf("reopened: %d bindings, %+v", len(binds), binds[upd.addr])
	}
	if st := s.status(); st.Recovered != "" || st.Records != 6 {
		t.Errorf("status %+v", st)
	}
}

func TestStoreTornTail(t *testing.T) {
	tests := []struct {
		name    string
		tail    string
		records int
		want    string
	}{
		{"partial line", "1234abcd 192.0.2", 3, "torn tail of 16 bytes"},
		{"damaged last line", "deadbeef 192.0.2.1 a 1 - - -\n", 3, "torn tail of 29 bytes"},
		{"damaged line in the middle", "deadbeef 192.0.2.1 a 1 - - -\n" + string(encodeRecord(nil, testBinding(7))), 4, "skipped 1 damaged records"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := openTestStore(t, dir)
			for i := range 3 {
				s.commit([]*binding{testBinding(i)})
			}
			s.close()
			path := filepath.Join(dir, logName)
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(tc.tail)
			f.Close()

			s, binds := openTestStore(t, dir)
			if len(binds) != tc.records {
				t.Errorf("%d bindings after repair, want %d", len(binds), tc.records)
			}
			if got := s.status().Recovered; !strings.Contains(got, tc.want) {
				t.Errorf("recovered %q, want it to say %q", got, tc.want)
			}
			if err := s.commit([]*binding{testBinding(8)}); err != nil {
				t.Fatal(err)
			}
			s.close()
			s, binds = openTestStore(t, dir)
			defer s.close()
			if len(binds) != tc.records+1 || s.status().Recovered != "" {
				t.Errorf("after repair and append: %d bindings, recovered %q", len(binds), s.status().Recovered)
			}
		})
	}
}

func TestStoreCompaction(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestStore(t, dir)
	live := map[uint32]*binding{}
	var mu sync.Mutex
	s.snapshot = func() []*binding {
		mu.Lock()
		defer mu.Unlock()
		var out []*binding
		for _, b := range live {
			c := *b
			out = append(out, &c)
		}
		return out
	}
	for round := range 2500 {
		var batch []*binding
		mu.Lock()
		for i := range 4 {
			b := testBinding(i)
			b.expires += int64(round)
			live[b.addr] = b
			batch = append(batch, b)
		}
		mu.Unlock()
		if err := s.commit(batch); err != nil {
			t.Fatal(err)
		}
	}
	st := s.status()
	if st.Compactions == 0 || st.Records > 8192+16 {
		t.Errorf("no compaction after 10000 records for 4 addresses: %+v", st)
	}
	s.close()
	s, binds := openTestStore(t, dir)
	defer s.close()
	if len(binds) != 4 || binds[testBinding(3).addr].expires != testBinding(3).expires+2499 {
		t.Errorf("after compaction: %d bindings, %+v", len(binds), binds[testBinding(3).addr])
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "."+logName+".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestStoreOpenCompactsGarbage(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestStore(t, dir)
	for range 1100 {
		s.commit([]*binding{testBinding(0)})
	}
	s.close()
	s, binds := openTestStore(t, dir)
	defer s.close()
	if len(binds) != 1 || s.status().Records != 1 {
		t.Errorf("open did not compact: %d bindings, %+v", len(binds), s.status())
	}
}

func TestStoreGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestStore(t, dir)
	defer s.close()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if err := s.commit([]*binding{testBinding(g*50 + i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	st := s.status()
	if st.Commits != 800 || st.Batches >= 800 {
		t.Errorf("800 concurrent commits took %d batches (%d commits): no batching", st.Batches, st.Commits)
	}
	if st.BatchRecords.Count != st.Batches || st.BatchRecords.Sum != 800 || st.Fsync.Count != st.Batches {
		t.Errorf("%d batches of 800 records: sizes %+v, fsyncs %+v", st.Batches, st.BatchRecords, st.Fsync)
	}
	t.Logf("800 commits in %d batches", st.Batches)
}

// The store times every batch's fdatasync and counts its records: commits
// one after another are one batch each.
func TestStoreHistograms(t *testing.T) {
	s, _ := openTestStore(t, t.TempDir())
	defer s.close()
	if st := s.status(); st.Fsync.Count != 0 || len(st.Fsync.Counts) != len(fsyncBounds)+1 || len(st.BatchRecords.Counts) != len(batchBounds)+1 {
		t.Fatalf("before any commit: %+v %+v", st.Fsync, st.BatchRecords)
	}
	n := 0
	for i := range 9 {
		recs := []*binding{testBinding(n)}
		if i < 5 {
			recs = append(recs, testBinding(n+1), testBinding(n+2))
		}
		n += len(recs)
		if err := s.commit(recs); err != nil {
			t.Fatal(err)
		}
	}
	st := s.status()
	b, f := st.BatchRecords, st.Fsync
	// 1 record: the bucket of bound 1; 3: the bucket above 2, at most 4.
	if b.Count != 9 || b.Sum != float64(n) || b.Counts[0] != 4 || b.Counts[2] != 5 {
		t.Errorf("batch sizes %+v, want 4 of 1 and 5 of 3 records", b)
	}
	var sum uint64
	for _, c := range f.Counts {
		sum += c
	}
	if f.Count != 9 || sum != 9 || f.Sum <= 0 || st.Batches != 9 {
		t.Errorf("fsyncs %+v over %d batches, want 9", f, st.Batches)
	}
}

// TestStoreSpuriousWakeups: a wake-up with nothing queued must not make the
// append buffer and the buffer being written the same array (the race
// detector and the record check both catch it).
func TestStoreSpuriousWakeups(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestStore(t, dir)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				s.kick()
				if err := s.commit([]*binding{testBinding(g*200 + i)}); err != nil {
					t.Error(err)
				}
				s.kick()
			}
		}()
	}
	wg.Wait()
	s.close()
	s, binds := openTestStore(t, dir)
	defer s.close()
	if len(binds) != 800 || s.status().Recovered != "" {
		t.Errorf("%d bindings after 800 commits, recovered %q", len(binds), s.status().Recovered)
	}
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestStore(t, dir)
	if _, _, err := openStore(dir, quietLog(), storeOptions{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second open of the same log: %v, want an in-use error", err)
	}
	s.close()
	s, _ = openTestStore(t, dir)
	s.close()
}
