package aliases

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Result is what a Set achieved.
type Result struct {
	Done      []Step // carried out, in order
	Conflicts []Step // desired addresses on the NIC that gatewayd did not add: left alone
	Deferred  []Step // put off by the Watch rate limit (Set itself defers nothing)
	// Pending are the steps waiting for the NIC to appear; Watch carries
	// them out when it does.
	Pending []Step
	// Waiting says why something waits: the NIC is absent (then Pending
	// lists the steps), or down (the aliases are on it, and are announced
	// when it comes up). Empty when nothing waits.
	Waiting string
}

// Changed reports whether the kernel was changed.
func (r Result) Changed() bool { return len(r.Done) > 0 }

// Plan returns the steps Set(desired) would carry out now, and the
// conflicts it would report, without changing anything. While the NIC is
// absent, they are the adds that wait for it.
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
	if errors.Is(err, ErrNoLink) {
		return pending(n.ifname, want, n.owned, err), nil
	}
	if err != nil {
		return nil, err
	}
	return plan(n.ifname, want, kernel, n.owned), nil
}

// pending is what waits for an absent NIC: every desired alias, to add.
func pending(ifname string, desired []Alias, owned ownedFunc, why error) []Step {
	steps := plan(ifname, desired, nil, owned)
	for i := range steps {
		steps[i].Reason = "waiting: " + why.Error()
	}
	return steps
}

// Set makes the NIC hold exactly the desired aliases among the addresses
// gatewayd owns: it adds the missing ones (and announces them), relabels,
// and removes the ones it added earlier that are no longer desired. It
// never touches an address it did not add. An unchanged desired set makes
// no netlink write. The error joins every step that failed; Result lists
// what was done regardless. While the NIC is absent, Set changes nothing
// and returns no error: Result.Pending and Result.Waiting say what waits.
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
	if n.rec.hold(n.ifname, want) {
		n.recDirty = true
	}
	res, err := n.reconcile(ctx, nil, announce)
	for _, s := range res.Conflicts {
		n.log.Warn("alias not held: its address is on the NIC but was not added by gatewayd", "alias", s.Alias.Name, "addr", s.Alias.Prefix, "reason", s.Reason)
	}
	if len(res.Pending) > 0 {
		n.log.Warn("aliases wait for the interface", "pending", len(res.Pending), "reason", res.Waiting)
	}
	return res, err
}

// reconcile brings the kernel to n.desired; steps allow rejects are
// deferred. The caller holds n.mu.
func (n *NIC) reconcile(ctx context.Context, allow func(Step) bool, announce bool) (Result, error) {
	var res Result
	link, kernel, err := n.kernelAddrs()
	if errors.Is(err, ErrNoLink) {
		res.Waiting, res.Pending = err.Error(), pending(n.ifname, n.desired, n.owned, err)
		return res, n.saveRecord()
	}
	if err != nil {
		return res, err
	}
	if err := n.ready(link); err != nil {
		return res, err
	}
	errs := []error{n.forgetGone(kernel)}
	var steps []Step
	steps, res.Deferred = admit(plan(n.ifname, n.desired, kernel, n.owned), allow)
	errs = append(errs, n.refuse(steps)...)
	if err := n.promoteBefore(link, steps, kernel); err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	if err := n.recordIntent(steps); err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	for _, s := range steps {
		if s.Op == OpConflict {
			res.Conflicts = append(res.Conflicts, s)
			continue
		}
		if !s.writes() {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("aliases on %s: stopped before %q: %w", n.ifname, s, err))
			break
		}
		if err := n.step(link, s); err != nil {
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
	if len(added) > 0 && !isUp(link.Attrs()) {
		res.Waiting = fmt.Sprintf("interface %s is down (or has no carrier): its aliases are on it, and are announced when it comes up", n.ifname)
	}
	if err := n.burst(link, added...); err != nil {
		n.log.Warn("gratuitous ARP failed", "err", err)
	}
	n.dropUnmetIntents(steps, res.Done)
	errs = append(errs, n.saveRecord())
	return res, errors.Join(errs...)
}

// admit splits the steps that write into those allow lets through and
// those it defers; the others pass. allow is asked exactly once per step:
// it spends the Watch budget.
func admit(steps []Step, allow func(Step) bool) (admitted, deferred []Step) {
	if allow == nil {
		return steps, nil
	}
	for _, s := range steps {
		if s.writes() && !allow(s) {
			deferred = append(deferred, s)
			continue
		}
		admitted = append(admitted, s)
	}
	return admitted, deferred
}

// step carries out one kernel step.
func (n *NIC) step(link netlink.Link, s Step) error {
	switch s.Op {
	case OpAdd:
		return n.add(link, s.Alias)
	case OpRelabel:
		return n.relabel(link, s)
	case OpDel:
		return n.del(link, s.Alias)
	}
	return fmt.Errorf("aliases on %s: no such step %q", n.ifname, s.Op)
}

// refuse forgets the record's entries for the addresses plan refuses to
// remove (removable), and returns an error for each: from then on they
// are not gatewayd's, and nothing is ever done to them.
func (n *NIC) refuse(steps []Step) []error {
	var errs []error
	for _, s := range steps {
		if s.Op != OpRefuse {
			continue
		}
		n.log.Error("the record names an address gatewayd must not remove; forgetting it", "addr", s.Alias.Prefix, "label", s.Alias.Label, "reason", s.Reason)
		n.rec.remove(n.ifname, s.Alias.Prefix)
		n.recDirty = true
		errs = append(errs, errors.New(strings.TrimPrefix(s.String(), "# ")))
	}
	return errs
}

// promoteBefore makes sure of promote_secondaries again before a step
// removes the first address of a subnet, the one change it matters to:
// someone may have turned it off since the NIC was made ready, and then
// the kernel would delete the whole subnet with it.
func (n *NIC) promoteBefore(link netlink.Link, steps []Step, kernel []kernelAddr) error {
	primary := map[netip.Prefix]bool{}
	for _, k := range kernel {
		primary[k.Prefix] = k.Primary
	}
	for _, s := range steps {
		if (s.Op == OpDel || s.Op == OpRelabel) && primary[s.Alias.Prefix] {
			return n.ensurePromote(link.Attrs().Index)
		}
	}
	return nil
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
// left by a crash is dropped by forgetGone on the next. A relabel keeps
// its recorded label until its add is done: the prefix is recorded already.
func (n *NIC) recordIntent(steps []Step) error {
	intents := 0
	for _, s := range steps {
		if s.Op == OpAdd {
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
