package dhcp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"gatewayd/statedir"
)

// The lease log is a text file of one record per line, each the whole state of
// one address; the last record of an address wins:
//
//	<crc32c hex> <addr> <state a|d|r> <expires unix> <mac hex|-> <client id hex|-> <hostname|->
//
// The CRC covers the line after "<crc> " up to the newline, so a torn or
// damaged line is recognised. Records are appended by one writer goroutine
// that batches whatever is waiting into one write and one fdatasync (group
// commit) and only then runs the callbacks that send the ACKs. When the log
// holds much more than the live records it is rewritten from a snapshot into
// a temporary file that is renamed over it.

const logName = "leases.log"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errStoreClosed is what appends after close get.
var errStoreClosed = errors.New("lease log is closed")

// StoreStatus describes the lease log for `gatewayd status`.
type StoreStatus struct {
	Path        string `json:"path"`
	Records     int64  `json:"records"`
	Bytes       int64  `json:"bytes"`
	Commits     uint64 `json:"commits"`
	Batches     uint64 `json:"batches"`
	Compactions uint64 `json:"compactions"`
	// Recovered says what opening the log repaired (a torn tail after a crash).
	Recovered string `json:"recovered,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// store is the durable lease log.
type store struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	buf     []byte
	n       int // records in buf
	waiters []func(error)
	closed  bool
	wake    chan struct{}
	exited  chan struct{}

	unlock func() // releases the directory's lock when the log is closed

	// Owned by the writer goroutine (and open, before it starts).
	f        *os.File
	size     int64
	records  int64
	lastLive int64
	spare    []byte
	// snapshot returns every binding to keep, in an order compaction writes.
	// It is called on the writer goroutine; nil disables compaction.
	snapshot func() []*binding
	// afterBatch, when set, runs on the writer goroutine after the
	// callbacks of each batch (the server sends their replies together).
	afterBatch func()

	commits, batches, compactions atomic.Uint64
	recovered                     string
	lastErr                       atomic.Pointer[string]
	statRecords, statBytes        atomic.Int64
}

// openStore opens (or creates) the lease log in dir, replays it, repairs a
// torn tail, and starts the writer. It returns the bindings the log holds.
func openStore(dir string, log *slog.Logger) (*store, map[uint32]*binding, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("creating lease directory %s: %w", dir, err)
	}
	s := &store{path: filepath.Join(dir, logName), log: log, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	s.unlock = unlock
	if err := statedir.RemoveTemps(s.path); err != nil { // a compaction the last run did not finish
		unlock()
		return nil, nil, err
	}
	f, err := statedir.Open(s.path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("opening lease log %s: %w", s.path, err)
	}
	s.f = f
	binds, rep, err := replay(f)
	if err != nil {
		f.Close()
		unlock()
		return nil, nil, fmt.Errorf("reading lease log %s: %w", s.path, err)
	}
	s.size, s.records = rep.good, rep.records
	if rep.tornBytes > 0 || rep.bad > 0 {
		s.recovered = rep.String()
		log.Warn("lease log repaired", "path", s.path, "what", s.recovered)
	}
	if rep.tornBytes > 0 {
		if err := f.Truncate(rep.good); err != nil {
			f.Close()
			unlock()
			return nil, nil, fmt.Errorf("cutting the torn tail of lease log %s: %w", s.path, err)
		}
	}
	if err := statedir.SyncDir(dir); err != nil {
		f.Close()
		unlock()
		return nil, nil, err
	}
	s.lastLive = int64(len(binds))
	if s.records > 2*s.lastLive+1024 || rep.bad > 0 {
		list := make([]*binding, 0, len(binds))
		for _, b := range binds {
			list = append(list, b)
		}
		if err := s.rewrite(list); err != nil {
			s.f.Close()
			unlock()
			return nil, nil, err
		}
	}
	s.publishStats()
	go s.writer()
	return s, binds, nil
}

// replayReport is what reading the log found.
type replayReport struct {
	records   int64 // good records
	good      int64 // byte offset after the last good line
	tornBytes int64 // bytes after the last good line that were cut
	bad       int   // damaged lines in the middle, skipped
}

func (r replayReport) String() string {
	s := ""
	if r.tornBytes > 0 {
		s = fmt.Sprintf("cut a torn tail of %d bytes after %d records (a write interrupted by a crash)", r.tornBytes, r.records)
	}
	if r.bad > 0 {
		if s != "" {
			s += "; "
		}
		s += fmt.Sprintf("skipped %d damaged records", r.bad)
	}
	return s
}

// replay reads every record; the last one of each address wins. Damaged
// lines followed by good ones are skipped and counted; whatever follows the
// last good line (a partial line, damaged lines) is the torn tail.
func replay(f *os.File) (map[uint32]*binding, replayReport, error) {
	var rep replayReport
	binds := map[uint32]*binding{}
	r := bufio.NewReaderSize(f, 1<<16)
	var off int64
	pendingBad := 0
	for {
		line, err := r.ReadSlice('\n')
		long := false
		for errors.Is(err, bufio.ErrBufferFull) {
			// A line this long is no record; swallow it whole.
			off += int64(len(line))
			long = true
			line, err = r.ReadSlice('\n')
		}
		off += int64(len(line))
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, rep, err
		}
		b, ok := decodeRecord(line)
		if long || !ok {
			pendingBad++
			continue
		}
		rep.bad += pendingBad
		pendingBad = 0
		binds[b.addr] = b
		rep.records++
		rep.good = off
	}
	rep.tornBytes = off - rep.good
	return binds, rep, nil
}

// encodeRecord appends one log line for b.
func encodeRecord(dst []byte, b *binding) []byte {
	start := len(dst)
	dst = append(dst, "00000000 "...)
	body := len(dst)
	a := u32Addr(b.addr).As4()
	for i, x := range a {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendUint(dst, uint64(x), 10)
	}
	dst = append(dst, ' ', byte(b.state), ' ')
	dst = strconv.AppendInt(dst, b.expires, 10)
	for _, field := range []string{b.mac, b.clientID} {
		dst = append(dst, ' ')
		if field == "" {
			dst = append(dst, '-')
			continue
		}
		dst = appendHex(dst, field)
	}
	dst = append(dst, ' ')
	if b.hostname == "" {
		dst = append(dst, '-')
	} else {
		dst = append(dst, b.hostname...)
	}
	if b.static {
		dst = append(dst, " s"...)
	}
	sum := crc32.Checksum(dst[body:], crcTable)
	const digits = "0123456789abcdef"
	for i := 0; i < 8; i++ {
		dst[start+i] = digits[(sum>>(28-4*uint(i)))&0xf]
	}
	return append(dst, '\n')
}

func appendHex(dst []byte, s string) []byte {
	const digits = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		dst = append(dst, digits[s[i]>>4], digits[s[i]&0xf])
	}
	return dst
}

// decodeRecord parses one line (with its newline); ok is false for a damaged one.
func decodeRecord(line []byte) (*binding, bool) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if len(line) < 10 || line[8] != ' ' {
		return nil, false
	}
	want, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil || crc32.Checksum(line[9:], crcTable) != uint32(want) {
		return nil, false
	}
	f := bytes.Fields(line[9:])
	if len(f) != 6 && len(f) != 7 {
		return nil, false
	}
	addr, err := parseAddr4(string(f[0]))
	st := bindState(0)
	if len(f[1]) == 1 {
		st = bindState(f[1][0])
	}
	exp, err2 := strconv.ParseInt(string(f[2]), 10, 64)
	mac, ok1 := unhexField(f[3])
	cid, ok2 := unhexField(f[4])
	if err != nil || err2 != nil || !ok1 || !ok2 || (st != bindActive && st != bindDeclined && st != bindExpired) {
		return nil, false
	}
	b := &binding{addr: addr, state: st, expires: exp, mac: mac, clientID: cid}
	if string(f[5]) != "-" {
		b.hostname = string(f[5])
	}
	b.static = len(f) == 7 && string(f[6]) == "s"
	return b, true
}

func unhexField(f []byte) (string, bool) {
	if string(f) == "-" {
		return "", true
	}
	out := make([]byte, len(f)/2)
	if _, err := hex.Decode(out, f); err != nil {
		return "", false
	}
	return string(out), true
}

// append queues records; done runs on the writer goroutine once they are on
// disk (err nil) or could not be written. It never blocks on the disk.
func (s *store) append(recs []*binding, done func(error)) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if done != nil {
			done(errStoreClosed)
		}
		return
	}
	for _, b := range recs {
		s.buf = encodeRecord(s.buf, b)
	}
	s.n += len(recs)
	if done != nil {
		s.waiters = append(s.waiters, done)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// commit appends and waits until the records are on disk.
func (s *store) commit(recs []*binding) error {
	ch := make(chan error, 1)
	s.append(recs, func(err error) { ch <- err })
	return <-ch
}

// writer is the single goroutine that writes the log: every wake-up takes
// all queued records and writes them with one write and one fdatasync.
func (s *store) writer() {
	defer close(s.exited)
	for range s.wake {
		s.mu.Lock()
		buf, n, waiters, closed := s.buf, s.n, s.waiters, s.closed
		work := n > 0 || len(waiters) > 0
		if work {
			// The spare buffer takes the appends while buf is written; it
			// becomes the spare again afterwards. Swap only when there is
			// work, or buf and spare would end up the same array.
			s.buf, s.n, s.waiters = s.spare[:0], 0, nil
		}
		s.mu.Unlock()
		if work {
			err := s.writeBatch(buf, n)
			for _, w := range waiters {
				w(err)
			}
			if s.afterBatch != nil {
				s.afterBatch()
			}
			s.spare = buf[:0]
			if err == nil && s.snapshot != nil && s.records > 2*s.lastLive+8192 {
				if err := s.rewrite(s.snapshot()); err != nil {
					s.fail(err)
				}
			}
			s.publishStats()
		}
		if closed {
			s.mu.Lock()
			more := s.n > 0 || len(s.waiters) > 0
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
// failed write is cut off again so the next batch does not follow garbage.
func (s *store) writeBatch(buf []byte, n int) error {
	if n == 0 && len(buf) == 0 {
		return nil // only callbacks to run, in order
	}
	if len(buf) > 0 {
		if _, err := s.f.WriteAt(buf, s.size); err != nil {
			s.f.Truncate(s.size)
			return s.fail(fmt.Errorf("writing lease log %s: %w", s.path, err))
		}
	}
	if err := unix.Fdatasync(int(s.f.Fd())); err != nil {
		s.f.Truncate(s.size)
		return s.fail(fmt.Errorf("syncing lease log %s: %w", s.path, err))
	}
	s.size += int64(len(buf))
	s.records += int64(n)
	s.commits.Add(uint64(n))
	s.batches.Add(1)
	return nil
}

func (s *store) fail(err error) error {
	msg := err.Error()
	s.lastErr.Store(&msg)
	s.log.Error("lease log", "err", err)
	return err
}

// rewrite replaces the log with the given bindings (statedir.WriteFunc:
// a temporary file, synced, renamed over the log, the directory synced) and
// reopens it for appending.
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
	if err != nil {
		return fmt.Errorf("compacting lease log: %w", err)
	}
	f, err := statedir.Open(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("compacting lease log %s: reopening it: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("compacting lease log %s: %w", s.path, err)
	}
	s.f.Close()
	s.f, s.size, s.records, s.lastLive = f, st.Size(), int64(len(list)), int64(len(list))
	s.compactions.Add(1)
	s.log.Debug("lease log compacted", "path", s.path, "records", len(list))
	return nil
}

func (s *store) publishStats() {
	s.statRecords.Store(s.records)
	s.statBytes.Store(s.size)
}

// close writes what is queued, stops the writer and closes the file.
func (s *store) close() error {
	s.mu.Lock()
	if s.closed {
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

func (s *store) status() StoreStatus {
	st := StoreStatus{
		Path: s.path, Records: s.statRecords.Load(), Bytes: s.statBytes.Load(),
		Commits: s.commits.Load(), Batches: s.batches.Load(), Compactions: s.compactions.Load(),
		Recovered: s.recovered,
	}
	if e := s.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}
