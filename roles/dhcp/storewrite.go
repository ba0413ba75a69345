package dhcp

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"gatewayd/statedir"
)

// A waiter is told, on the writer goroutine, when the records queued with
// it are on disk (nil) or could not be written.
type waiter interface{ written(err error) }

// waitFunc is a func as a waiter.
type waitFunc func(error)

func (f waitFunc) written(err error) { f(err) }

// append queues records; done runs on the writer goroutine once they are on
// disk (err nil) or could not be written. It never blocks on the disk.
func (s *store) append(recs []*binding, done func(error)) {
	var w waiter
	if done != nil {
		w = waitFunc(done)
	}
	s.await(recs, w)
}

// await is append with a waiter (nil: none).
func (s *store) await(recs []*binding, w waiter) {
	s.mu.Lock()
	if s.closed || s.readOnly {
		s.mu.Unlock()
		if w != nil {
			err := errStoreClosed
			if s.readOnly {
				err = errReadOnly
			}
			w.written(err)
		}
		return
	}
	for _, b := range recs {
		s.buf = encodeRecord(s.buf, b)
	}
	s.recs = append(s.recs, recs...)
	if w != nil {
		s.waiters = append(s.waiters, w)
	}
	if s.pacing && len(s.recs) >= syncBatch {
		s.pacing = false
		select {
		case s.full <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	s.kick()
}

// pace reports whether the writer should wait for the sync gap's end:
// fewer than syncBatch records wait. While it waits, an append that
// brings them to syncBatch ends the wait (s.full).
func (s *store) pace() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pacing = len(s.recs) < syncBatch && !s.closed
	return s.pacing
}

// syncGap is the least time from one fdatasync to the next, unless
// syncBatch records are waiting. A record queued sooner waits for the
// gap's end, and so do those queued meanwhile: they all go in one write
// and one fdatasync. An fdatasync of an append costs about 100 µs of CPU
// (and the disk a millisecond of journal commit), whatever it carries, so
// under load the gap turns one sync per few ACKs into one per many; an ACK
// waits a few milliseconds more (a DHCP client waits seconds before it
// asks again). Only a batch after one that several waited for waits for
// the gap: a record after a quiet spell, or a caller committing one batch
// after another, is written at once. syncBatch records waiting end the
// wait early; they bound nothing: the writer then takes everything queued,
// so one sync carries all that arrived meanwhile, however many.
const (
	syncGap   = 10 * time.Millisecond
	syncBatch = 64
)

// compactSlack is how many records past twice the live leases (at the
// last compaction) the log may hold before the writer compacts it: a
// compaction writes every live lease again, so it waits until most of
// the log is records that no longer count.
const compactSlack = 8192

// writer is the single goroutine that writes the log: every wake-up takes
// all queued records and writes them with one write and one fdatasync, at
// most one every syncGap unless syncBatch records wait.
func (s *store) writer() {
	defer close(s.exited)
	var last time.Time // the start of the last write (monotonic)
	busy := false      // several waited for the last write
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	for range s.wake {
		if wait := syncGap - time.Since(last); wait > 0 && busy && s.pace() {
			gap.Reset(wait)
			select {
			case <-gap.C:
			case <-s.full:
				gap.Stop()
			}
			s.mu.Lock()
			s.pacing = false
			s.mu.Unlock()
			select { // a token sent as the timer fired
			case <-s.full:
			default:
			}
		}
		s.mu.Lock()
		buf, recs, waiters, closed := s.buf, s.recs, s.waiters, s.closed
		work := len(recs) > 0 || len(waiters) > 0
		if work {
			// The spare buffers take the appends while these are written;
			// they become the spares again afterwards. Swap only when there
			// is work, or buf and spare would end up the same array.
			s.buf, s.recs, s.waiters = s.spare[:0], s.spareRecs[:0], s.spareWaiters[:0]
		}
		s.mu.Unlock()
		if work {
			if len(buf) > 0 {
				last, busy = time.Now(), len(waiters) > 1
			}
			err := s.writeBatch(buf, len(recs))
			if len(buf) > 0 {
				s.health.note(err, s.now())
			}
			if s.settle != nil && len(recs) > 0 {
				s.settle(recs, err)
			}
			for _, w := range waiters {
				w.written(err)
			}
			if s.afterBatch != nil {
				s.afterBatch()
			}
			clear(recs)
			clear(waiters)
			s.spare, s.spareRecs, s.spareWaiters = buf[:0], recs[:0], waiters[:0]
			if err == nil && s.snapshot != nil && s.records > 2*s.lastLive+s.compactSlack && s.compacting.due(s.now()) {
				s.compacting.note(s.rewrite(s.snapshot()), s.now(), s.log, s.path)
			}
			s.publishStats()
		}
		if closed {
			s.mu.Lock()
			more := len(s.recs) > 0 || len(s.waiters) > 0
			s.mu.Unlock()
			if !more {
				return
			}
			s.kick()
		}
	}
}

func (s *store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writeBatch writes at the end of the good part of the file and syncs. A
// failed write is cut off again so the next batch does not follow garbage;
// until that cut, and the reopen of a log a compaction replaced, succeed,
// every batch fails (ready).
func (s *store) writeBatch(buf []byte, n int) error {
	if len(buf) == 0 {
		return nil // only callbacks to run, in order
	}
	if err := s.ready(); err != nil {
		return err
	}
	err := s.injected("write")
	if err == nil {
		_, err = s.f.WriteAt(buf, s.size)
	}
	if err != nil {
		s.cutBack()
		return fmt.Errorf("writing lease log %s: %w", s.path, err)
	}
	start := time.Now()
	if err := s.datasync(); err != nil {
		s.cutBack()
		return fmt.Errorf("syncing lease log %s: %w", s.path, err)
	}
	s.fsyncs.observeDuration(time.Since(start))
	s.sizes.observe(uint64(n))
	s.size += int64(len(buf))
	s.records += int64(n)
	s.commits.Add(uint64(n))
	s.batches.Add(1)
	return nil
}

// injected is the error a test's fault hook makes op fail with; nil in
// production.
func (s *store) injected(op string) error {
	if s.fault == nil {
		return nil
	}
	return s.fault(op)
}

func (s *store) datasync() error {
	if err := s.injected("sync"); err != nil {
		return err
	}
	return unix.Fdatasync(int(s.f.Fd()))
}

// cutBack cuts a failed batch off the file, durably. Whole records of it
// may be there past s.size: left, a shorter next batch would overwrite
// only their start, and at the next start they would win over older
// records of the same addresses (the last record wins) although they were
// rolled back. When the cut fails it is owed (s.uncut) and retried before
// the next write.
func (s *store) cutBack() error {
	err := s.injected("truncate")
	if err == nil {
		err = s.f.Truncate(s.size)
	}
	if err == nil {
		err = s.datasync()
	}
	s.uncut = err != nil
	return err
}

// ready makes the file fit for the next batch: the log a compaction renamed
// into place is the one written (reopened), and a failed batch is cut off.
// While either fails, every batch fails: no reply waits on a write that
// would not survive.
func (s *store) ready() error {
	if s.stale {
		if err := s.reopen(); err != nil {
			return fmt.Errorf("lease log %s was replaced by a compaction and cannot be reopened: %w", s.path, err)
		}
	}
	if s.uncut {
		if err := s.cutBack(); err != nil {
			return fmt.Errorf("lease log %s: cutting off a failed write: %w", s.path, err)
		}
	}
	return nil
}

// health is whether writes succeed. A failing write is a state, not noise:
// entering it and leaving it are logged once each, with the count of
// failed batches in between, and status shows it.
type health struct {
	log  *slog.Logger
	path string

	mu        sync.Mutex
	degraded  bool
	since     time.Time
	failures  uint64 // failed batches in this outage
	total     uint64
	lastErr   string
	lastErrAt time.Time
}

// note records the result of one batch.
func (h *health) note(err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		if h.degraded {
			h.log.Warn("lease log writes succeed again: leases are granted again", "path", h.path,
				"failed_batches", h.failures, "since", h.since.UTC().Format(time.RFC3339), "last_err", h.lastErr)
		}
		h.degraded, h.failures, h.lastErr, h.lastErrAt = false, 0, "", time.Time{}
		return
	}
	h.total++
	h.failures++
	h.lastErr, h.lastErrAt = err.Error(), now
	if !h.degraded {
		h.degraded, h.since = true, now
		h.log.Error("lease log writes fail: no lease is granted or changed until one succeeds (logged once until then)", "path", h.path, "err", err)
	}
}

func (h *health) report(st *StoreStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st.Degraded, st.LastError, st.LastErrorTime, st.FailedWrites = h.degraded, h.lastErr, h.lastErrAt, h.total
}

// compactState keeps a failing compaction (a disk too full for a second
// copy) from being retried after every batch and logged each time.
type compactState struct {
	mu    sync.Mutex
	err   string
	retry time.Time
}

// compactRetry is how long a failed compaction waits before the next try.
const compactRetry = time.Minute

func (c *compactState) due(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !now.Before(c.retry)
}

func (c *compactState) note(err error, now time.Time, log *slog.Logger, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		if c.err != "" {
			log.Info("lease log compacted again", "path", path)
		}
		c.err, c.retry = "", time.Time{}
		return
	}
	if c.err == "" {
		log.Warn("compacting the lease log fails (retried each minute)", "path", path, "err", err)
	}
	c.err, c.retry = err.Error(), now.Add(compactRetry)
}

func (c *compactState) error() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// rewrite replaces the log with the given bindings (statedir.WriteFunc:
// a temporary file, synced, renamed over the log, the directory synced) and
// reopens it for appending. Once the new file is renamed into place,
// nothing is written to the old one (unlinked: lost at the next start):
// when the directory sync or the reopen fails, the store is stale and
// every batch fails until ready reopens it.
func (s *store) rewrite(list []*binding) error {
	err := statedir.WriteFunc(s.path, 0o640, func(w io.Writer) error {
		var buf []byte
		for _, b := range list {
			buf = encodeRecord(buf[:0], b)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = s.injected("replace")
	}
	if err != nil && !s.replaced() {
		return fmt.Errorf("compacting lease log: %w", err)
	}
	// The directory sync is owed when WriteFunc failed after the rename:
	// without it the rename, and so every record appended to the new file,
	// might not survive a crash.
	s.stale, s.staleDir, s.staleRecords = true, err != nil, int64(len(list))
	if err != nil {
		return fmt.Errorf("compacting lease log: %w; no lease is written until the log is reopened", err)
	}
	if err := s.reopen(); err != nil {
		return fmt.Errorf("compacting lease log %s: reopening it: %w; no lease is written until it is reopened", s.path, err)
	}
	return nil
}

// replaced reports whether the file at the log's path is not the one open
// (a rename put another there); true when that cannot be told.
func (s *store) replaced() bool {
	onDisk, err := os.Lstat(s.path)
	if err != nil {
		return true
	}
	open, err := s.f.Stat()
	return err != nil || !os.SameFile(onDisk, open)
}

// reopen opens the file a compaction renamed over the log, after syncing
// the directory when that is owed, and appends to it from now on.
func (s *store) reopen() error {
	if s.staleDir {
		if err := statedir.SyncDir(filepath.Dir(s.path)); err != nil {
			return err
		}
		s.staleDir = false
	}
	err := s.injected("reopen")
	var f *os.File
	if err == nil {
		f, err = statedir.Open(s.path, os.O_RDWR, 0)
	}
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("lease log %s: %w", s.path, err)
	}
	if open, err := s.f.Stat(); err == nil && os.SameFile(st, open) {
		f.Close() // not replaced after all (a failed rename)
		s.stale = false
		return nil
	}
	s.f.Close()
	s.f, s.size, s.records, s.lastLive = f, st.Size(), s.staleRecords, s.staleRecords
	s.stale, s.uncut = false, false
	s.compactions.Add(1)
	s.log.Debug("lease log compacted", "path", s.path, "records", s.records)
	return nil
}

// close writes what is queued, stops the writer and closes the file.
func (s *store) close() error {
	s.mu.Lock()
	if s.closed || s.readOnly {
		s.closed = true
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.kick()
	<-s.exited
	err := s.f.Close()
	s.unlock()
	if err != nil {
		return fmt.Errorf("closing lease log %s: %w", s.path, err)
	}
	return nil
}
