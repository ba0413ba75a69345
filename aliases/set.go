package aliases

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Result is what a Set achieved.
type Result struct {
	Done      []Step // carried out, in order
	Conflicts []Step // desired addresses on the NIC that gatewayd did not add: left alone
	Deferred  []Step // put off by the Watch rate limit (Set itself defers nothing)
}

// Changed reports whether the kernel was changed.
func (r Result) Changed() bool { return len(r.Done) > 0 }

// Plan returns the steps Set(desired) would carry out now, and the
// conflicts it would report, without changing anything.
func (n *NIC) Plan(desired []Alias) ([]Step, error) {
	want, err := validate(n.ifname, desired)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.usable(); err != nil {
		return nil, err
	}
	_, kernel, err := n.kernelAddrs()
	if err != nil {
		return nil, err
	}
	return plan(n.ifname, want, kernel, n.owned), nil
}

// Set makes the NIC hold exactly the desired aliases among the addresses
// gatewayd owns: it adds the missing ones (and announces them), relabels,
// and removes the ones it added earlier that are no longer desired. It
// never touches an address it did not add. An unchanged desired set makes
// no netlink write. The error joins every step that failed; Result lists
// what was done regardless.
func (n *NIC) Set(ctx context.Context, desired []Alias) (Result, error) {
	return n.set(ctx, desired, true)
}

// SetQuiet is Set without the gratuitous ARP for the addresses it adds: the
// controller announces them with Announce once their roles serve, so no
// neighbour is sent to a port nobody listens on yet.
func (n *NIC) SetQuiet(ctx context.Context, desired []Alias) (Result, error) {
	return n.set(ctx, desired, false)
}

func (n *NIC) set(ctx context.Context, desired []Alias, announce bool) (Result, error) {
	want, err := validate(n.ifname, desired)
	if err != nil {
		return Result{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.usable(); err != nil {
		return Result{}, err
	}
	if want == nil {
		want = []Alias{}
	}
	n.desired = want
	res, err := n.reconcile(ctx, nil, announce)
	for _, s := range res.Conflicts {
		n.log.Warn("alias not held: its address is on the NIC but was not added by gatewayd", "alias", s.Alias.Name, "addr", s.Alias.Prefix, "reason", s.Reason)
	}
	return res, err
}

// reconcile brings the kernel to n.desired; steps allow rejects are
// deferred. The caller holds n.mu.
func (n *NIC) reconcile(ctx context.Context, allow func(Step) bool, announce bool) (Result, error) {
	var res Result
	link, kernel, err := n.kernelAddrs()
	if err != nil {
		return res, err
	}
	errs := []error{n.forgetGone(kernel)}
	steps := plan(n.ifname, n.desired, kernel, n.owned)
	if err := n.recordIntent(steps, allow); err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	for _, s := range steps {
		if s.Op == OpConflict {
			res.Conflicts = append(res.Conflicts, s)
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("aliases on %s: stopped before %q: %w", n.ifname, s, err))
			break
		}
		if allow != nil && !allow(s) {
			res.Deferred = append(res.Deferred, s)
			continue
		}
		var err error
		switch s.Op {
		case OpAdd:
			err = n.add(link, s.Alias)
		case OpRelabel:
			err = n.relabel(link, s)
		case OpDel:
			err = n.del(link, s.Alias)
		}
		if err != nil {
			n.log.Error("step failed", "step", s.String(), "err", err)
			errs = append(errs, err)
			continue
		}
		n.log.Info("step done", "alias", s.Alias.Name, "addr", s.Alias.Prefix, "step", s.String(), "reason", s.Reason)
		res.Done = append(res.Done, s)
	}
	var added []netip.Addr
	for _, s := range res.Done {
		if s.Op != OpDel && announce {
			added = append(added, s.Alias.Prefix.Addr())
		}
	}
	if err := n.burst(link, added...); err != nil {
		n.log.Warn("gratuitous ARP failed", "err", err)
	}
	n.dropUnmetIntents(steps, res.Done)
	errs = append(errs, n.saveRecord())
	return res, errors.Join(errs...)
}

// dropUnmetIntents takes out of the record the adds recordIntent wrote that
// were not carried out (stopped by ctx, deferred, or failed).
func (n *NIC) dropUnmetIntents(steps, done []Step) {
	added := map[netip.Prefix]bool{}
	for _, s := range done {
		added[s.Alias.Prefix] = true
	}
	for _, s := range steps {
		if s.Op == OpAdd && !added[s.Alias.Prefix] {
			if _, ok := n.owned(s.Alias.Prefix); ok {
				n.rec.remove(n.ifname, s.Alias.Prefix)
				n.recDirty = true
			}
		}
	}
}

// recordIntent writes every address about to be added into the record before
// the first add, in one atomic write: an address gatewayd adds is never on
// the NIC without the record naming it, and 250 adds cost one fsync, not 250.
// An entry whose add then fails is dropped at the end of the reconcile; one
// left by a crash is dropped by forgetGone on the next.
func (n *NIC) recordIntent(steps []Step, allow func(Step) bool) error {
	intents := 0
	for _, s := range steps {
		if (s.Op == OpAdd || s.Op == OpRelabel) && (allow == nil || allow(s)) {
			n.rec.put(n.ifname, s.Alias)
			intents++
		}
	}
	if intents == 0 {
		return nil
	}
	if err := n.rec.save(); err != nil {
		for _, s := range steps {
			if s.Op == OpAdd {
				n.rec.remove(n.ifname, s.Alias.Prefix)
			}
		}
		return fmt.Errorf("aliases on %s: nothing added: %w", n.ifname, err)
	}
	return nil
}

// saveRecord writes the record when the reconcile changed it.
func (n *NIC) saveRecord() error {
	if !n.recDirty {
		return nil
	}
	if err := n.rec.save(); err != nil {
		return err
	}
	n.recDirty = false
	return nil
}

// forgetGone drops owned entries whose address is no longer on the NIC (it
// was removed by someone else, or the NIC was recreated): the record holds
// what is achieved, and an address added again by hand later is not ours.
func (n *NIC) forgetGone(kernel []kernelAddr) error {
	present := make(map[netip.Prefix]bool, len(kernel))
	for _, k := range kernel {
		present[k.Prefix] = true
	}
	changed := false
	for _, e := range n.rec.on(n.ifname) {
		if !present[e.Prefix] {
			n.log.Debug("owned address is gone from the NIC; forgetting it", "alias", e.Name, "addr", e.Prefix)
			n.rec.remove(n.ifname, e.Prefix)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return n.rec.save()
}

// add adds a and records it. recordIntent has already written it into the
// record; a failed add takes it out again.
func (n *NIC) add(link netlink.Link, a Alias) error {
	if err := n.addrAdd(link, a); err != nil {
		if _, ok := n.owned(a.Prefix); ok {
			n.rec.remove(n.ifname, a.Prefix)
			n.recDirty = true
		}
		return fmt.Errorf("adding %s to %s: %w", a, n.ifname, err)
	}
	n.rec.put(n.ifname, a)
	n.recDirty = true
	return nil
}

// relabel deletes and adds the address again (the kernel cannot change a
// label in place); if the add fails, the old label is put back.
func (n *NIC) relabel(link netlink.Link, s Step) error {
	old := Alias{Name: s.Alias.Name, Prefix: s.Alias.Prefix, Label: s.OldLabel}
	if err := n.del(link, old); err != nil {
		return err
	}
	err := n.add(link, s.Alias)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("relabelling %s from %s to %s: %w", s.Alias, s.OldLabel, s.Alias.Label, err)
	if rerr := n.add(link, old); rerr != nil {
		return errors.Join(err, fmt.Errorf("restoring label %s: %w", s.OldLabel, rerr))
	}
	return err
}

// del removes an owned address and forgets it. An address already gone
// counts as removed.
func (n *NIC) del(link netlink.Link, a Alias) error {
	if _, ok := n.owned(a.Prefix); !ok {
		// plan never proposes this; the check keeps the promise local.
		return fmt.Errorf("removing %s from %s: not added by gatewayd; refusing", a, n.ifname)
	}
	err := n.addrDel(link, a.Prefix, a.Label)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("removing %s from %s: %w", a, n.ifname, err)
	}
	n.rec.remove(n.ifname, a.Prefix)
	n.recDirty = true
	return nil
}

// Owned returns the addresses gatewayd added that are on the NIC now.
func (n *NIC) Owned() ([]netip.Prefix, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, kernel, err := n.kernelAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, k := range kernel {
		if _, ok := n.owned(k.Prefix); ok {
			out = append(out, k.Prefix)
		}
	}
	return out, nil
}

// SetAnnounce changes how later additions are announced.
func (n *NIC) SetAnnounce(a Announce) {
	n.bgMu.Lock()
	defer n.bgMu.Unlock()
	n.announce = a.withDefaults()
}

// AliasStatus is one desired alias as the kernel has it now.
type AliasStatus struct {
	Alias    Alias
	Present  bool   // the exact address/length is on the NIC
	Label    string // the kernel's label, when present
	Owned    bool   // gatewayd added it
	Conflict string // non-empty: the address is on the NIC but not gatewayd's
	Err      error  // the kernel could not be asked
}

// Status reports each alias of the last Set.
func (n *NIC) Status() []AliasStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]AliasStatus, 0, len(n.desired))
	err := n.usable()
	var kernel []kernelAddr
	if err == nil {
		_, kernel, err = n.kernelAddrs()
	}
	var steps []Step
	if err == nil {
		steps = plan(n.ifname, n.desired, kernel, n.owned)
	}
	for _, d := range n.desired {
		st := AliasStatus{Alias: d, Err: err}
		for _, k := range kernel {
			if k.Prefix == d.Prefix {
				st.Present, st.Label = true, k.Label
				_, st.Owned = n.owned(k.Prefix)
			}
		}
		for _, s := range steps {
			if s.Op == OpConflict && s.Alias.Prefix == d.Prefix {
				st.Conflict = s.Reason
			}
		}
		out = append(out, st)
	}
	return out
}

// Purge removes every address gatewayd owns on the NIC and forgets them;
// Watch stops putting anything back until the next Set.
func (n *NIC) Purge(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.usable(); err != nil {
		return err
	}
	n.desired = nil
	link, kernel, err := n.kernelAddrs()
	if err != nil {
		return err
	}
	errs := []error{n.forgetGone(kernel)}
	for _, k := range kernel {
		rec, ok := n.owned(k.Prefix)
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("purging %s: %w", n.ifname, err))
			break
		}
		a := Alias{Name: rec.Name, Prefix: k.Prefix, Label: k.Label}
		if err := n.del(link, a); err != nil {
			errs = append(errs, err)
			continue
		}
		n.log.Info("purged", "alias", a.Name, "addr", a.Prefix)
	}
	errs = append(errs, n.saveRecord())
	return errors.Join(errs...)
}
