package firewall

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	sock    *nlSocket     // batches and read-back dumps; nil once closed
	mon     *netlink.Conn // for Watch: joins the nftables group only while watched
	applied string        // rendering of the ruleset last applied and verified
	last    *Ruleset      // that ruleset
	gen     uint32        // the nftables generation at which it was verified
	batches atomic.Uint64
}

// Open connects to nftables in the network namespace of the calling
// goroutine's thread. The Firewall keeps its sockets (one for batches and
// dumps, one for Watch), and so that namespace, for its whole life,
// whichever goroutine calls it later. Open changes nothing in the kernel.
func Open(opts Options) (*Firewall, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s, err := dialNetfilter()
	if err != nil {
		return nil, err
	}
	mon, err := dialMonitor()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return &Firewall{log: log.With("component", "firewall"), sock: s, mon: mon}, nil
}

// Close releases the netlink connection. It leaves the table in place: the
// firewall keeps protecting the box while gatewayd is stopped.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.sock != nil {
		err = errors.Join(f.sock.Close(), f.mon.Close())
		f.sock, f.mon = nil, nil
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
// It is idempotent: when r renders as the ruleset last applied and nothing
// has been committed to nftables since it was verified (the ruleset's
// generation is unchanged), nothing is read or written. Otherwise the table
// is read back and compared with r (see plan.go); when the kernel already
// holds r (a restart with the same policy), nothing is written. Else one
// netlink batch updates only the chains, sets and counters that differ, so
// the change is atomic, packets of allowed flows in flight are not lost, and
// counters keep their values; then the table is read back and compared
// again. When the kernel refuses the batch the previous ruleset stays in
// place and the error says why.
func (f *Firewall) Set(r *Ruleset) error {
	text := r.Render()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sock == nil {
		return errors.New("applying the firewall: the firewall is closed")
	}
	gen, err := f.sock.genID()
	if err != nil {
		return fmt.Errorf("applying the firewall: %w", err)
	}
	if text == f.applied && gen == f.gen {
		return nil
	}
	cur, err := f.sock.readTable()
	if err != nil {
		return fmt.Errorf("applying the firewall: %w", err)
	}
	p := planUpdate(cur, r)
	if p.empty() {
		f.applied, f.last, f.gen = text, r, gen
		return nil
	}
	if text == f.applied {
		f.log.Warn("table inet gatewayd was changed outside gatewayd; restoring it", "changes", strings.Join(p.problems(5), "; "))
	}
	if err := f.apply(r, cur, p); err != nil {
		return err
	}
	f.applied, f.last = text, r
	return nil
}

// apply sends the batch that carries out p and verifies the result, falling
// back to a whole replacement when the table cannot be updated in place or
// the update is refused.
func (f *Firewall) apply(r *Ruleset, cur *kernelTable, p *tablePlan) error {
	var err error
	if p.replace == "" {
		if err = f.send(updateBatch(r, p)); err == nil {
			return f.settle(r)
		}
		if f.check(r) == nil {
			f.log.Warn("the kernel reported an error but table inet gatewayd holds the new ruleset", "err", err)
			return nil
		}
		f.log.Warn("updating table inet gatewayd failed; replacing it whole (counters restart at zero)", "err", err)
	} else {
		f.log.Warn("table inet gatewayd cannot be updated in place; replacing it whole (counters restart at zero)", "why", p.replace)
	}
	if err2 := f.send(replaceBatch(r, cur.exists)); err2 != nil {
		return fmt.Errorf("applying the firewall: %w", errors.Join(err, err2, f.stateAfterError()))
	}
	return f.settle(r)
}

// settle reads the table back after a batch the kernel accepted, and puts
// the previous ruleset back when it does not hold r.
func (f *Firewall) settle(r *Ruleset) error {
	if err := f.check(r); err != nil {
		return fmt.Errorf("applying the firewall: the kernel accepted the ruleset but reading it back: %w; %w", err, f.rollback())
	}
	return nil
}

// check reads the table back and compares it with r. When they match it
// records the generation read before the table, so that Set notices any
// commit made since.
func (f *Firewall) check(r *Ruleset) error {
	gen, err := f.sock.genID()
	if err != nil {
		return err
	}
	cur, err := f.sock.readTable()
	if err != nil {
		return err
	}
	if p := planUpdate(cur, r); !p.empty() {
		return fmt.Errorf("table inet gatewayd differs from the ruleset: %s", strings.Join(p.problems(5), "; "))
	}
	f.gen = gen
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
		if p := planUpdate(cur, f.last); p.replace != "" {
			err = f.send(replaceBatch(f.last, cur.exists))
		} else if !p.empty() {
			err = f.send(updateBatch(f.last, p))
		}
	}
	if err == nil {
		err = f.check(f.last)
	}
	if err != nil {
		return fmt.Errorf("going back to the previous ruleset failed too: %w", err)
	}
	return errors.New("the previous ruleset was put back")
}

// stateAfterError reads the table back after a failed batch and says what
// the kernel holds now.
func (f *Firewall) stateAfterError() error {
	if f.last != nil && f.check(f.last) == nil {
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
	f.applied, f.last, f.gen = "", nil, 0
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
