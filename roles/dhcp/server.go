package dhcp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Options are what the controller gives the role once, at creation.
type Options struct {
	// StateDir holds the lease log, in StateDir/dhcp/.
	StateDir string
	Logger   *slog.Logger
	// Names, when set, receives the host names of leases.
	Names Names
	// ReadOnly opens the lease log only to read it (`gatewayd leases` and
	// `export` with the daemon stopped): nothing is created, locked,
	// repaired or written, damage is only reported (Status().Store), and
	// Set, Import and Delete fail.
	ReadOnly bool
	// AcceptLeaseLoss opens a lease log even when its damage leaves fewer
	// than half of the records it appears to hold (`gatewayd run
	// --accept-lease-loss`). Without it New fails with ErrLeaseLoss and
	// leaves the file as it is.
	AcceptLeaseLoss bool
	// compactSlack, set by tests, is the lease log's (storeOptions).
	compactSlack int64
}

// Server is the DHCP role. New opens the lease log; Set starts, reconfigures
// and stops serving; Close stops it and closes the log.
type Server struct {
	opts  Options
	log   *slog.Logger
	names Names
	store *store
	cnt   counters
	now   func() time.Time
	// sweepEvery is how often expired leases are ended (names go at the
	// lease's end, expiry.go).
	sweepEvery time.Duration
	earlier    chan struct{} // wakes the sweeper for an earlier name expiry
	// running counts the role's goroutines (the sweeper, the read loops,
	// the probes); Close waits for them before it closes the lease log.
	running sync.WaitGroup
	live    atomic.Int32 // how many of them run, for the tests
	// reopens counts the sockets opened again by a Set with the running
	// config because the NIC was re-created or appeared (followNIC).
	reopens atomic.Uint64
	// sendFailed keeps replies the kernel does not take from being logged
	// more than once a second.
	sendFailed failureLog

	setMu sync.Mutex // serialises Set and Close

	mu      sync.Mutex // guards everything below
	h       *handler
	cur     *Config       // applied; nil when stopped
	conn    *conn         // nil while waiting for the NIC
	waiting string        // why there is no conn while cur is set
	stopped chan struct{} // closed to stop the sweeper
	closed  bool

	// pend and flushing are the log writer's: the replies of the batch
	// being written (only a written batch has replies: written gets an
	// error on any other goroutine, and prepare sends nothing for it), and
	// the sender that writes them.
	pend     []pending
	flushing []datagram
	flushSnd *sender
	replies  sync.Pool // of *awaitReply
}

// New opens (or creates) the lease log under opts.StateDir/dhcp and loads it.
// The role does not serve until Set.
func New(opts Options) (*Server, error) {
	if opts.StateDir == "" {
		return nil, errors.New("no state directory for the lease log")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("role", "dhcp")
	s := &Server{log: log, names: opts.Names, now: time.Now, sweepEvery: 10 * time.Second, earlier: make(chan struct{}, 1), opts: opts}
	// The hooks run on the writer for appended records; nothing is
	// appended before New returns, when s.h and s.flushSnd are set.
	st, binds, err := openStore(filepath.Join(opts.StateDir, "dhcp"), log,
		storeOptions{readOnly: opts.ReadOnly, acceptLoss: opts.AcceptLeaseLoss, now: s.now, compactSlack: opts.compactSlack,
			snapshot: s.snapshot, settle: s.settle, afterBatch: s.flush})
	if err != nil {
		return nil, err
	}
	s.store = st
	names := 0
	for _, b := range binds {
		if b.hostname != "" {
			names++
		}
	}
	s.h = &handler{alloc: newAllocator(len(binds), names), counters: &s.cnt, log: log, authoritative: true, logs: newLogLimit(), wires: &wirePool{}}
	s.flushSnd = newSender()
	a := s.h.alloc
	for _, b := range binds {
		a.load(b)
	}
	a.settleNames(s.now().Unix())
	loaded := len(binds)
	if binds = nil; loaded >= freeAfterLoad {
		// Reading a log allocates several times what its leases keep; the
		// runtime would give that back to the kernel over minutes.
		debug.FreeOSMemory()
	}
	a.onEarlier = s.nameSooner
	level := slog.LevelInfo
	if opts.ReadOnly {
		level = slog.LevelDebug
	}
	log.Log(context.Background(), level, "lease log opened", "path", st.path, "leases", loaded, "read_only", opts.ReadOnly)
	return s, nil
}

// freeAfterLoad is how many leases make New return the memory their
// loading used at once.
const freeAfterLoad = 10000

// settle runs on the log's writer once a batch is written or has failed:
// a written batch's records lose their undo, a failed one's are rolled
// back, so memory holds only what is on disk.
func (s *Server) settle(recs []*binding, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.h.alloc.settled(recs)
		return
	}
	s.h.alloc.rollback(recs, s.now().Unix())
}

// snapshot copies every written binding for a compaction of the log.
func (s *Server) snapshot() []*binding {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.h.alloc.durable()
	copies := make([]binding, len(list))
	out := make([]*binding, len(list))
	for i, b := range list {
		copies[i] = *b
		copies[i].undo = nil
		out[i] = &copies[i]
	}
	return out
}

// errReadOnlyRole is what changes to a role opened read-only get.
var errReadOnlyRole = errors.New("the DHCP role's lease log is open read-only")

// Set applies the role's desired state: it starts the role, reconfigures it
// (pools and options change without losing a lease) or, with nil, stops it
// (no [dhcp] in the site file, or another box holds the DHCP alias). The
// same value again writes nothing and costs one ioctl: it only checks that
// the NIC is still the one the sockets are bound to, and re-opens them
// when it was deleted and created again. A NIC that does not exist is
// waited for (Status().Waiting) without an error, at start or when the
// served NIC goes away; serving resumes at the first Set after it is back.
// Moving a running role to a NIC that does not exist is refused. On error
// the previous state keeps running. Every socket the role uses (UDP and
// packet) is opened here, in the network namespace of the calling
// goroutine.
func (s *Server) Set(ctx context.Context, c *Config) error {
	if s.opts.ReadOnly {
		return errReadOnlyRole
	}
	if c != nil {
		if err := c.validate(); err != nil {
			return err
		}
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	cur, closed, oldConn := s.cur, s.closed, s.conn
	s.mu.Unlock()
	if closed {
		return errors.New("the role is closed")
	}
	if c == nil {
		s.stop()
		return nil
	}
	if cur != nil && reflect.DeepEqual(*cur, *c) {
		return s.followNIC(cur, oldConn)
	}
	want := c.clone()
	newConn, waiting, err := s.connFor(want, cur, oldConn)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.h.configure(want)
	starting := s.cur == nil
	s.cur = want
	var names []nameChange
	if starting {
		s.stopped = make(chan struct{})
		names = s.activeNames(true)
	}
	stopped := s.stopped
	s.useConn(newConn, waiting)
	published := s.namesInOrder(names)
	s.mu.Unlock()
	<-published

	if starting {
		s.spawn(func() { s.sweeper(stopped) })
	}
	msg := "serving"
	if waiting != "" {
		msg = "configured, not serving until its NIC exists"
	}
	s.log.Info(msg, "iface", want.Interface, "addr", want.Server.Addr(), "pools", len(want.Pools), "static", len(want.Static))
	return nil
}

// spawn runs f on a goroutine of the role, one Close waits for.
func (s *Server) spawn(f func()) {
	s.live.Add(1)
	s.running.Go(func() {
		defer s.live.Add(-1)
		f()
	})
}

// activeNames lists the names of every live lease, to publish or withdraw.
func (s *Server) activeNames(publish bool) []nameChange {
	now := s.now().Unix()
	out := make([]nameChange, 0, len(s.h.alloc.byName)) // its holders, or fewer
	for _, b := range s.h.alloc.byAddr {
		if s.h.alloc.holdsName(b, now) {
			out = append(out, nameChange{publish: publish, host: b.hostname, addr: u32Addr(b.addr)})
		}
	}
	return out
}

// namesInOrder makes the name changes after everything queued on the lease
// log before them, so Names sees the changes in the order they were decided.
// Call it with s.mu held; the channel closes once they are made. A closed
// log runs the callback at once, on the caller's goroutine and under its
// locks, where Names must not be called: then nothing is made (the names
// were withdrawn when the role stopped).
func (s *Server) namesInOrder(names []nameChange) <-chan struct{} {
	done := make(chan struct{})
	if len(names) == 0 {
		close(done)
		return done
	}
	s.store.append(nil, func(err error) {
		if !errors.Is(err, errStoreClosed) {
			applyNames(s.names, names)
		}
		close(done)
	})
	return done
}

// stop closes the socket and withdraws the names; the leases stay.
func (s *Server) stop() {
	s.mu.Lock()
	if s.cur == nil {
		s.mu.Unlock()
		return
	}
	cn := s.conn
	s.cur, s.conn, s.waiting = nil, nil, ""
	close(s.stopped)
	withdrawn := s.namesInOrder(s.activeNames(false))
	s.mu.Unlock()
	if cn != nil {
		cn.close()
	}
	<-withdrawn
	s.log.Info("stopped")
}

// readEvery is the least time from one read of the socket to the next
// while requests keep coming: those that arrive meanwhile are read, handled
// and answered together. A read, a wake-up and a send cost the kernel
// about as much for one datagram as for thirty, so a storm of one request
// every hundred microseconds costs a third as much this way; a request
// waits at most this long more. A request after a quiet spell, or a batch
// that fills the reader, is read at once.
const readEvery = time.Millisecond

// serve is the read loop of one socket; it ends when the socket is closed.
// It reads datagrams in batches, handles them under one lock, and sends the
// replies that need no disk write together.
func (s *Server) serve(cn *conn) {
	r, snd := newReader(), newSender()
	var pkts []inPacket
	var now []outcome
	var last time.Time // the start of the last read (monotonic)
	var failing readFailure
	for {
		if wait := readEvery - time.Since(last); wait > 0 && len(pkts) < batchSize {
			time.Sleep(wait)
		}
		last = time.Now()
		var err error
		pkts, err = cn.read(r, pkts[:0])
		if errors.Is(err, net.ErrClosed) {
			return
		}
		failing.note(s.log, err)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if r.truncated > 0 {
			s.cnt.malformed.Add(uint64(r.truncated))
		}
		now = now[:0]
		s.mu.Lock()
		if s.conn != cn {
			s.mu.Unlock()
			return
		}
		at := s.now() // one clock read for the batch: its datagrams came within the same read
		for _, p := range pkts {
			if !s.forUs(p.dst) {
				s.cnt.ignored.Add(1)
				continue
			}
			out := s.h.handleBytes(at, p.b, p.src)
			s.h.logReceived(&out)
			now = s.route(cn, out, p.b, p.src, 1, now)
		}
		s.mu.Unlock()
		s.sendNow(cn, now, snd)
	}
}

// readFailure keeps a read loop's failing reads from being logged every
// time they are retried: a new error is logged once, the return to
// working reads once, with the count of failed reads in between.
type readFailure struct {
	err   string
	count uint64
}

func (f *readFailure) note(log *slog.Logger, err error) {
	switch {
	case err == nil && f.err != "":
		log.Info("reading the DHCP socket works again", "failed_reads", f.count, "last_err", f.err)
		f.err, f.count = "", 0
	case err != nil && err.Error() != f.err:
		log.Warn("reading the DHCP socket fails; retried every 10ms (logged once per error)", "err", err)
		f.err = err.Error()
		f.count++
	case err != nil:
		f.count++
	}
}

// route sends an outcome on its way; called with s.mu held. Bindings and
// names go through the lease log's writer, which sends the reply once they
// are on disk; an OFFER of an address to probe waits for the probe; the
// rest is appended to now, for the caller to send once the lock is free.
func (s *Server) route(cn *conn, out outcome, raw []byte, src netip.AddrPort, attempt int, now []outcome) []outcome {
	switch {
	case out.probe:
		s.namesInOrder(out.names)
		raw := append([]byte(nil), raw...)
		s.spawn(func() { s.probeOffer(cn, out, raw, src, attempt) })
	case len(out.commit) > 0 || len(out.names) > 0:
		w, _ := s.replies.Get().(*awaitReply)
		if w == nil {
			w = &awaitReply{s: s}
		}
		w.cn, w.out = cn, out
		s.store.await(out.commit, w)
	case out.mt != 0:
		now = append(now, out)
	}
	return now
}

// awaitReply is an outcome waiting for its bindings to be on disk (a
// waiter of the lease log); reused.
type awaitReply struct {
	s   *Server
	cn  *conn
	out outcome
}

// written runs on the log's writer once the outcome's bindings are on
// disk (or failed): the reply joins its batch's, sent together (flush).
func (w *awaitReply) written(err error) {
	s := w.s
	if d, ok := s.prepare(w.cn, w.out, err); ok {
		s.pend = append(s.pend, pending{w.cn, d})
	}
	w.cn, w.out = nil, outcome{}
	s.replies.Put(w)
}

// pending is a reply whose bindings are on disk, waiting for the end of
// its log batch.
type pending struct {
	cn *conn
	d  datagram
}

// flush sends the replies of a log batch; it runs on the log's writer.
func (s *Server) flush() {
	list := s.pend
	for len(list) > 0 {
		cn := list[0].cn
		ds := s.flushing[:0]
		rest := list[:0]
		for _, p := range list {
			if p.cn == cn {
				ds = append(ds, p.d)
			} else {
				rest = append(rest, p)
			}
		}
		s.send(cn, ds, s.flushSnd)
		clear(ds)
		s.flushing = ds[:0]
		list = rest
	}
	clear(s.pend)
	s.pend = s.pend[:0]
}

// sendNow sends replies that wait for nothing, with snd, the caller's.
func (s *Server) sendNow(cn *conn, outs []outcome, snd *sender) {
	if len(outs) == 0 {
		return
	}
	ds := snd.ready[:0]
	for _, out := range outs {
		if d, ok := s.prepare(cn, out, nil); ok {
			ds = append(ds, d)
		}
	}
	s.send(cn, ds, snd)
	clear(ds)
	snd.ready = ds[:0]
}

// probeOffer ARP-probes the offered address (RFC 5227 probes on the
// packet socket, answered by the holder's kernel); a free one's OFFER
// leaves, a taken one is quarantined and the DISCOVER handled again, a few
// times.
func (s *Server) probeOffer(cn *conn, out outcome, raw []byte, src netip.AddrPort, attempt int) {
	addr := out.yiaddr
	holder, err := cn.eth.Probe(context.Background(), u32Addr(addr), probeWait)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("probing before an offer; offering anyway", "addr", u32Addr(addr), "err", err)
	}
	s.mu.Lock()
	if s.conn != cn {
		s.h.probeAbandoned(addr)
		s.mu.Unlock()
		return
	}
	var now []outcome
	if rec, offer := s.h.probed(s.now(), addr, holder); offer {
		now = append(now, out)
	} else if rec != nil {
		s.store.append([]*binding{rec}, nil)
		if attempt < maxProbes {
			now = s.route(cn, s.h.handleBytes(s.now(), raw, src), raw, src, attempt+1, now)
		}
	}
	s.mu.Unlock()
	s.sendNow(cn, now, newSender())
}

// probeWait is how long an offer waits for an answer to its ARP probes.
const probeWait = 300 * time.Millisecond

// maxProbes bounds the addresses one DISCOVER may probe before it is
// dropped (the client will ask again).
const maxProbes = 4

// forUs accepts requests broadcast on the wire or sent to the DHCP alias; a
// role does not answer on another role's address.
func (s *Server) forUs(dst netip.Addr) bool {
	if !dst.IsValid() || dst == bcast4 || s.cur == nil {
		return true
	}
	alias := s.cur.Server
	if dst == alias.Addr() {
		return true
	}
	return dst == broadcastOf(alias)
}

func broadcastOf(p netip.Prefix) netip.Addr {
	v := addrU32(p.Masked().Addr()) | ^(^uint32(0) << (32 - p.Bits()))
	return u32Addr(v)
}

// prepare turns an outcome whose bindings are on disk into the datagram
// to send, making its name changes first. A binding that could not be
// written gets no reply: the client will ask again.
func (s *Server) prepare(cn *conn, out outcome, err error) (datagram, bool) {
	if err != nil {
		s.cnt.storeErrors.Add(1)
		if out.mt != 0 {
			s.h.event(slog.LevelDebug, evNoReply, "no reply: its lease could not be written", out.req.attrs("reason", err.Error())...)
		}
		return datagram{}, false
	}
	applyNames(s.names, out.names)
	s.h.logAck(&out)
	if out.mt == 0 {
		if out.why != "" {
			s.h.event(slog.LevelDebug, evNoReply, "no reply", out.req.attrs("reason", out.why)...)
		}
		return datagram{}, false
	}
	d := datagram{b: out.wire, src: u32Addr(out.from), dst: out.to, mt: out.mt}
	if out.direct {
		d.mac = out.hw[:]
	}
	return d, true
}

// send writes replies and counts them: frames to a client's MAC first (one
// the packet socket refuses is broadcast instead), then the rest in
// batches, with snd. Their buffers then serve the next replies.
func (s *Server) send(cn *conn, ds []datagram, snd *sender) {
	if len(ds) == 0 {
		return
	}
	rest := snd.rest[:0]
	for _, d := range ds {
		if d.mac == nil {
			rest = append(rest, d)
			continue
		}
		if err := cn.sendFrame(d); err != nil {
			s.log.Debug("unicast to the client's MAC impossible, broadcasting", "mac", macString(d.mac), "err", err)
			d.mac, d.dst = nil, netip.AddrPortFrom(bcast4, clientPort)
			rest = append(rest, d)
			continue
		}
		s.cnt.out[d.mt].Add(1)
	}
	if len(rest) > 0 {
		sent, err := cn.write(snd, rest)
		if err != nil {
			s.cnt.sendErrors.Add(uint64(len(rest) - sent))
			if unsent, ok := s.sendFailed.note(len(rest)-sent, time.Now().UnixNano()); ok {
				s.log.Warn("replies not sent (logged at most once a second)", "unsent", unsent, "err", err)
			}
		}
		for _, d := range rest[:sent] {
			s.cnt.out[d.mt].Add(1)
		}
	}
	clear(rest)
	snd.rest = rest[:0]
	for _, d := range ds {
		s.h.wires.put(d.b)
	}
}

// Close stops the role, waits for its goroutines to return (the sockets
// are closed, the sweeper stopped) and closes the lease log after writing
// what is queued.
func (s *Server) Close() error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.stop()
	s.running.Wait()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	return s.store.close()
}
