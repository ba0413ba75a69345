package firewall

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
)

// Options configure a Firewall.
type Options struct {
	// Logger receives the component's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Firewall applies rulesets to table inet gatewayd in the network namespace
// it was opened in. Its methods are safe for concurrent use.
type Firewall struct {
	log *slog.Logger

	mu      sync.Mutex
	sock    *nlSocket // batches and read-back dumps; nil once closed
	applied string    // rendering of the ruleset last applied and verified
	last    *Ruleset  // that ruleset
	batches atomic.Uint64
}

// Open connects to nftables in the network namespace of the calling
// goroutine's thread. The Firewall keeps that one socket, and so that
// namespace, for its whole life, whichever goroutine calls it later. Open
// changes nothing in the kernel.
func Open(opts Options) (*Firewall, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s, err := dialNetfilter()
	if err != nil {
		return nil, err
	}
	return &Firewall{log: log.With("component", "firewall"), sock: s}, nil
}

// Close releases the netlink connection. It leaves the table in place: the
// firewall keeps protecting the box while gatewayd is stopped.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.sock != nil {
		err = f.sock.Close()
		f.sock = nil
	}
	return err
}

// Batches counts the netlink batches (writes) sent so far.
func (f *Firewall) Batches() uint64 { return f.batches.Load() }

// Applied returns the ruleset last applied and verified, or nil.
func (f *Firewall) Applied() *Ruleset {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// Set makes table inet gatewayd be r; r must not be changed afterwards.
// It is idempotent: when r renders as
// the ruleset last applied and the kernel still holds it, nothing is written.
// Otherwise one netlink batch flushes and rebuilds the table, so the old and
// new rules are swapped atomically and named counters that r keeps keep their
// values; then the table is read back and compared (chains, rules per chain,
// set elements, counters). When the kernel refuses the batch the previous
// ruleset stays in place and the error says why.
func (f *Firewall) Set(r *Ruleset) error {
	text := r.Render()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sock == nil {
		return errors.New("applying the firewall: the firewall is closed")
	}
	if text == f.applied {
		err := f.verify(r)
		if err == nil {
			return nil
		}
		f.log.Warn("table inet gatewayd was changed outside gatewayd; restoring it", "err", err)
	}
	if err := f.apply(r); err != nil {
		return err
	}
	f.applied, f.last = text, r
	return nil
}

// apply sends r and verifies it, falling back to a full replacement when the
// flush-and-rebuild batch is refused.
func (f *Firewall) apply(r *Ruleset) error {
	cur, err := f.sock.readTable()
	if err != nil {
		return fmt.Errorf("applying the firewall: %w", err)
	}
	err = f.send(batch(r, func(cc *nftables.Conn) error { return queueRebuild(cc, r, cur) }))
	if err != nil {
		if f.verify(r) == nil {
			f.log.Warn("the kernel reported an error but table inet gatewayd holds the new ruleset", "err", err)
			return nil
		}
		f.log.Warn("rebuilding table inet gatewayd failed; replacing it whole (counters restart at zero)", "err", err)
		err2 := f.send(batch(r, func(cc *nftables.Conn) error { return queueReplace(cc, r, cur.exists) }))
		if err2 != nil {
			return fmt.Errorf("applying the firewall: %w", errors.Join(err, err2, f.stateAfterError()))
		}
	}
	if err := f.verify(r); err != nil {
		return fmt.Errorf("applying the firewall: the kernel accepted the ruleset but reading it back %w; %w", err, f.rollback())
	}
	return nil
}

// rollback puts the last verified ruleset back after a new one failed its
// read-back, so that what runs is a ruleset gatewayd checked.
func (f *Firewall) rollback() error {
	if f.last == nil {
		return errors.New("there is no previous ruleset to go back to")
	}
	cur, err := f.sock.readTable()
	if err == nil {
		err = f.send(batch(f.last, func(cc *nftables.Conn) error { return queueRebuild(cc, f.last, cur) }))
	}
	if err == nil {
		err = f.verify(f.last)
	}
	if err != nil {
		return fmt.Errorf("going back to the previous ruleset failed too: %w", err)
	}
	return errors.New("the previous ruleset was put back")
}

// stateAfterError reads the table back after a failed batch and says what
// the kernel holds now.
func (f *Firewall) stateAfterError() error {
	if f.last != nil && f.verify(f.last) == nil {
		return errors.New("the previous ruleset is still in place")
	}
	cur, err := f.sock.readTable()
	switch {
	case err != nil:
		return fmt.Errorf("reading table inet gatewayd back: %w", err)
	case !cur.exists:
		return errors.New("table inet gatewayd does not exist now")
	}
	return fmt.Errorf("table inet gatewayd now has %d chains, %d sets, %d objects and does not match the previous ruleset", len(cur.chains), len(cur.sets), len(cur.objects))
}

// send sends one encoded batch. A failed exchange leaves the socket usable
// (see nlSocket.resync).
func (f *Firewall) send(msgs []netlink.Message, err error) error {
	if err != nil {
		return fmt.Errorf("encoding the batch: %w", err)
	}
	f.batches.Add(1)
	kerrs, err := f.sock.sendBatch(msgs)
	if err != nil {
		return err
	}
	return batchErr(kerrs, msgs)
}

// Purge deletes table inet gatewayd, and nothing else.
func (f *Firewall) Purge() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sock == nil {
		return errors.New("removing the firewall: the firewall is closed")
	}
	cur, err := f.sock.readTable()
	if err != nil {
		return fmt.Errorf("removing the firewall: %w", err)
	}
	f.applied, f.last = "", nil
	if !cur.exists {
		return nil
	}
	err = f.send(capture(func(cc *nftables.Conn) error {
		cc.DelTable(gatewaydTable())
		return nil
	}))
	if err != nil {
		return fmt.Errorf("removing table inet gatewayd: %w", err)
	}
	return nil
}
