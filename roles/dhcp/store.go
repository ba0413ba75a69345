package dhcp

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gatewayd/statedir"
)

// The store is the durable lease log (format in leaselog.go). Records are
// appended by one writer goroutine that batches whatever is waiting into one
// write and one fdatasync (group commit) and only then runs the callbacks
// that send the ACKs. When the log holds much more than the live records it
// is rewritten from a snapshot into a temporary file renamed over it.
//
// Opening repairs what a crash leaves (a torn last record) and what other
// damage there is, but never destroys silently: before anything is cut or
// rewritten the original is kept next to the log (leases.log.damaged-<time>:
// a hard link to the whole file before a rewrite, a copy of the bytes cut
// before a truncation), and a cut of more than one record is an ERROR. A log
// whose readable records are fewer than half of what it appears to hold is
// refused (ErrLeaseLoss) unless the operator accepts the loss.

// errStoreClosed is what appends after close get.
var errStoreClosed = errors.New("lease log is closed")

// errReadOnly is what writes to a store opened read-only get.
var errReadOnly = errors.New("lease log is open read-only")

// ErrLeaseLoss is returned by New when the lease log is so damaged that
// starting would keep fewer than half of the leases it appears to hold. The
// file is left as it is; Options.AcceptLeaseLoss starts anyway (keeping a
// copy of the original first).
var ErrLeaseLoss = errors.New("the lease log is damaged beyond its last records")

// StoreStatus describes the lease log for `gatewayd status`.
type StoreStatus struct {
	Path        string `json:"path"`
	Records     int64  `json:"records"`
	Bytes       int64  `json:"bytes"`
	Commits     uint64 `json:"commits"`
	Batches     uint64 `json:"batches"`
	Compactions uint64 `json:"compactions"`
	// Recovered says what opening the log found and repaired (a torn tail
	// after a crash, damage), and where the original was kept.
	Recovered string `json:"recovered,omitempty"`
	// Backup is the copy of the damaged original that opening kept.
	Backup   string `json:"backup,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
	// Degraded is set while writes fail (a full disk, say): no lease is
	// granted or changed meanwhile, and nothing is kept in memory that is
	// not on disk. LastError and LastErrorTime say why and since when;
	// they clear after the next good write.
	Degraded      bool      `json:"degraded"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	// FailedWrites counts the batches whose write failed, ever.
	FailedWrites uint64 `json:"failed_writes"`
	// CompactionError is set while compacting fails (it is retried each
	// minute); the log keeps growing. When the new file is in place but
	// could not be reopened, writes fail (Degraded) until it is.
	CompactionError string `json:"compaction_error,omitempty"`
	// Fsync is the time each written batch's fdatasync took, in seconds;
	// BatchRecords the records each carried (one observation per batch
	// of Batches).
	Fsync        Histogram `json:"fsync"`
	BatchRecords Histogram `json:"batch_records"`
}

// storeOptions say how the log is opened.
type storeOptions struct {
	readOnly   bool // read it; write, lock and repair nothing
	acceptLoss bool // open even when the damage drops most records
	now        func() time.Time
	// compactSlack is how many records past twice the live ones make the
	// writer compact the log; 0: compactSlack's default. Tests lower it
	// to compact often.
	compactSlack int64
	// The store's hooks (see store), set before its writer starts.
	snapshot   func() []*binding
	settle     func(recs []*binding, err error)
	afterBatch func()
}

// store is the durable lease log.
type store struct {
	path     string
	log      *slog.Logger
	readOnly bool
	now      func() time.Time

	mu      sync.Mutex
	buf     []byte
	recs    []*binding // the records in buf, for settle
	waiters []waiter
	closed  bool
	pacing  bool          // the writer waits for the end of the sync gap
	full    chan struct{} // ends that wait: syncBatch records are queued
	wake    chan struct{}
	exited  chan struct{}

	unlock func() // releases the directory's lock when the log is closed

	// Owned by the writer goroutine (and open, before it starts).
	f            *os.File
	size         int64
	records      int64
	lastLive     int64
	compactSlack int64 // see storeOptions
	spare        []byte
	spareRecs    []*binding
	spareWaiters []waiter
	health       health
	compacting   compactState
	// snapshot returns every binding to keep, in an order compaction writes.
	// It is called on the writer goroutine; nil disables compaction.
	snapshot func() []*binding
	// settle, when set, runs on the writer goroutine once a batch is
	// written (err nil) or has failed, before the batch's callbacks: the
	// server forgets the undo of written records and rolls failed ones back.
	settle func(recs []*binding, err error)
	// afterBatch, when set, runs on the writer goroutine after the
	// callbacks of each batch (the server sends their replies together).
	afterBatch func()
	// uncut is set while a failed batch may still be in the file past
	// size (cutBack failed); stale while the log at path may not be f (a
	// compaction renamed a new one there), staleDir while that rename's
	// directory sync is owed, staleRecords the new file's records.
	uncut, stale, staleDir bool
	staleRecords           int64
	// fault, set by tests, makes the file operation it names fail.
	fault func(op string) error

	commits, batches, compactions atomic.Uint64
	recovered, backup             string
	statRecords, statBytes        atomic.Int64
	// fsyncs and sizes are each written batch's fdatasync time and records.
	fsyncs, sizes *histogram
}

// openStore opens (or creates) the lease log in dir, replays it, repairs
// what is damaged (keeping the original), and starts the writer. It returns
// the bindings the log holds. Read-only, it only reads: no lock, no repair,
// no file created.
func openStore(dir string, log *slog.Logger, o storeOptions) (*store, map[uint32]*binding, error) {
	if o.now == nil {
		o.now = time.Now
	}
	s := &store{path: filepath.Join(dir, logName), log: log, now: o.now, readOnly: o.readOnly,
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1), exited: make(chan struct{}),
		fsyncs: newHistogram(fsyncBounds, 1e-9), sizes: newHistogram(batchBounds, 1),
		snapshot: o.snapshot, settle: o.settle, afterBatch: o.afterBatch, compactSlack: cmp.Or(o.compactSlack, compactSlack)}
	s.health.log, s.health.path = log, s.path
	if o.readOnly {
		return s.openReadOnly()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("creating lease directory %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	s.unlock = unlock
	binds, err := s.open(dir, o)
	if err != nil {
		if s.f != nil {
			s.f.Close()
		}
		unlock()
		return nil, nil, err
	}
	s.publishStats()
	go s.writer()
	return s, binds, nil
}

// open reads the log and repairs it; the caller cleans up on error.
func (s *store) open(dir string, o storeOptions) (map[uint32]*binding, error) {
	if err := statedir.RemoveTemps(s.path); err != nil { // a compaction the last run did not finish
		return nil, err
	}
	f, err := statedir.Open(s.path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening lease log %s: %w", s.path, err)
	}
	s.f = f
	binds, rep, err := readLog(f, fileSize(f))
	if err != nil {
		return nil, fmt.Errorf("reading lease log %s: %w", s.path, err)
	}
	if rep.heavyLoss() && !o.acceptLoss {
		return nil, fmt.Errorf("lease log %s: only %d of the %d records it appears to hold are readable (%s): refusing to start and drop the rest; the file is left as it is: repair it, or start accepting the loss (gatewayd run --accept-lease-loss; a copy of the original is kept): %w",
			s.path, rep.records, rep.appearsToHold(), rep.damage(), ErrLeaseLoss)
	}
	if err := s.repair(rep, binds); err != nil {
		return nil, err
	}
	if err := statedir.SyncDir(dir); err != nil {
		return nil, err
	}
	s.lastLive = int64(len(binds))
	if s.records > 2*s.lastLive+1024 {
		// A log this long only costs time to read: a compaction that fails
		// (a full disk) is retried later, not a reason not to serve.
		s.compacting.note(s.rewrite(bindingList(binds)), s.now(), s.log, s.path)
	}
	return binds, nil
}

// openReadOnly reads the log without writing anything: `gatewayd leases`
// and `export` with the daemon stopped. Damage is reported, not repaired.
func (s *store) openReadOnly() (*store, map[uint32]*binding, error) {
	close(s.exited)
	f, err := statedir.Open(s.path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return s, map[uint32]*binding{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("opening lease log %s: %w", s.path, err)
	}
	defer f.Close()
	binds, rep, err := readLog(f, fileSize(f))
	if err != nil {
		return nil, nil, fmt.Errorf("reading lease log %s: %w", s.path, err)
	}
	if rep.damaged() {
		s.recovered = "not repaired (read only): " + rep.damage()
	}
	s.size, s.records = rep.size, rep.records
	s.publishStats()
	return s, binds, nil
}

// fileSize is f's size, 0 when unknown.
func fileSize(f *os.File) int64 {
	if st, err := f.Stat(); err == nil {
		return st.Size()
	}
	return 0
}

func bindingList(binds map[uint32]*binding) []*binding {
	list := make([]*binding, 0, len(binds))
	for _, b := range binds {
		list = append(list, b)
	}
	return list
}

// repair makes the file fit for appending: damage among the records gets
// the log rewritten from what was read, a damaged tail is cut, a last
// record without its newline gets one. The original is kept first.
func (s *store) repair(rep *logReport, binds map[uint32]*binding) error {
	s.size, s.records = rep.size, rep.records
	var err error
	switch {
	case rep.midLines > 0:
		if s.backup, err = s.keepWhole(); err == nil {
			err = s.rewrite(bindingList(binds))
		}
	case rep.tailLines > 0:
		if s.backup, err = s.keepTail(rep.good, rep.size); err == nil {
			err = s.f.Truncate(rep.good)
			s.size = rep.good
		}
	case !rep.terminated && rep.size > 0:
		// A last record without its newline: give it one, or the next
		// append would run into it. Nothing is removed.
		if _, err = s.f.WriteAt([]byte{'\n'}, rep.size); err == nil {
			err = unix.Fdatasync(int(s.f.Fd()))
			s.size++
		}
	}
	if err != nil {
		return fmt.Errorf("repairing lease log %s (%s): %w", s.path, rep.damage(), err)
	}
	if fr := rep.framing(); fr != "" {
		s.log.Info("lease log read with framing gatewayd does not write", "path", s.path, "framing", fr, "records", rep.records)
	}
	if !rep.damaged() {
		return nil
	}
	s.recovered = rep.damage() + "; the original is kept in " + s.backup
	attrs := []any{"path", s.path, "damage", rep.damage(), "cut_bytes", rep.midBytes + rep.tailBytes,
		"kept_records", rep.records, "backup", s.backup}
	if rep.serious() {
		s.log.Error("lease log damaged beyond one interrupted write: the damaged part was cut, a copy of the original is kept", attrs...)
	} else {
		s.log.Warn("lease log repaired (a write interrupted by a crash): the original is kept", attrs...)
	}
	return nil
}

// backupName returns a name for a copy of the damaged log that no file has.
func (s *store) backupName() (string, error) {
	base := s.path + ".damaged-" + s.now().UTC().Format("20060102T150405Z")
	for i := 1; i < 100; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free name for a copy of the damaged lease log %s", s.path)
}

// keepWhole links the damaged log under a backup name before a rewrite
// replaces it (the rewrite makes a new file, so the link keeps the old).
func (s *store) keepWhole() (string, error) {
	name, err := s.backupName()
	if err != nil {
		return "", err
	}
	if err := os.Link(s.path, name); err != nil {
		return "", fmt.Errorf("keeping a copy of the damaged lease log: %w", err)
	}
	return name, statedir.SyncDir(filepath.Dir(s.path))
}

// keepTail copies the bytes [from, to) that a truncation will cut.
func (s *store) keepTail(from, to int64) (string, error) {
	name, err := s.backupName()
	if err != nil {
		return "", err
	}
	err = statedir.WriteFunc(name, 0o640, func(w io.Writer) error {
		_, err := io.Copy(w, io.NewSectionReader(s.f, from, to-from))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("keeping a copy of the damaged end of the lease log: %w", err)
	}
	return name, nil
}

// lockDir takes the lease directory for this process alone (statedir.Lock
// on dir/lock), so two processes (a daemon and an offline import, two
// daemons) never append to one log. The kernel drops the lock when the
// process dies, kill -9 included.
func lockDir(dir string) (func(), error) {
	unlock, err := statedir.Lock(dir)
	if errors.Is(err, statedir.ErrLocked) {
		return nil, fmt.Errorf("lease directory %s is in use by another gatewayd process: stop it, or import through it (%w)", dir, err)
	}
	return unlock, err
}

func (s *store) publishStats() {
	s.statRecords.Store(s.records)
	s.statBytes.Store(s.size)
}

func (s *store) status() StoreStatus {
	st := StoreStatus{
		Path: s.path, Records: s.statRecords.Load(), Bytes: s.statBytes.Load(),
		Commits: s.commits.Load(), Batches: s.batches.Load(), Compactions: s.compactions.Load(),
		Recovered: s.recovered, Backup: s.backup, ReadOnly: s.readOnly,
		Fsync: s.fsyncs.snapshot(), BatchRecords: s.sizes.snapshot(),
	}
	s.health.report(&st)
	st.CompactionError = s.compacting.error()
	return st
}
