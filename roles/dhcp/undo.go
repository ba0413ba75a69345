package dhcp

import (
	"cmp"
	"slices"
)

// A binding enters memory when the handler decides it, before its record
// is on disk (the next request must see it), and leaves again if the write
// fails: memory never holds what the disk does not. put remembers, on each
// binding it installs, what that binding replaced (was: the address's
// previous binding or deletion; wasClient: the client's previous binding);
// the writer clears both once the record is written (settled), and rolls
// the records of a failed batch back (rollback). Bindings in memory are
// never changed in place by a decision (put copies), so what was replaced
// is intact to put back. One change is made in place: sweep marks a binding
// whose time has run out expired. That is no decision and writes no record
// (the log's record already ends at that time), and putting such a binding
// back puts it back as the clock made it: expired either way (live is false
// once expires has passed, whatever its state says).

// settled forgets the undo of records that are on disk.
func (a *allocator) settled(recs []*binding) {
	for _, r := range recs {
		r.undo = nil
		if r.state == bindDeleted && a.tombs[r.addr] == r {
			delete(a.tombs, r.addr)
		}
	}
}

// kept follows a chain of replaced bindings past those that failed too.
func kept(b *binding) *binding {
	for b != nil && b.failed() {
		b = b.undo.was
	}
	return b
}

// rollback undoes recs, a batch whose write failed: each address they
// hold goes back to the last binding that did not fail, unless a later
// decision (a record still to be written) holds it now; each client goes
// back to its previous binding. It returns nothing to tell Names: name
// changes are made only after their records are written.
func (a *allocator) rollback(recs []*binding, now int64) {
	for _, r := range recs {
		if r.undo == nil {
			r.undo = &undo{}
		}
		r.undo.failed = true
	}
	restored := map[string]*binding{} // by client key
	keys := map[string]bool{}
	var named []*binding
	for _, r := range recs {
		if r.undo.setsClient {
			keys[r.key()] = true
		}
		cur := a.byAddr[r.addr]
		if r.state == bindDeleted {
			if a.tombs[r.addr] != r {
				continue
			}
			delete(a.tombs, r.addr)
			if cur != nil {
				continue // decided on since: that decision stands in for it
			}
		} else if cur != r {
			continue
		}
		if cur != nil {
			a.dropName(cur)
			a.delAddr(r.addr)
		}
		t := kept(r.was())
		switch {
		case t == nil:
		case t.state == bindDeleted:
			a.tombs[r.addr] = t
		default:
			a.setAddr(r.addr, t)
			if k := t.key(); k != "" {
				keys[k] = true
				if o := restored[k]; o == nil || o.expires < t.expires {
					restored[k] = t
				}
			}
			named = append(named, t)
		}
		a.refresh(r.addr)
	}
	for k := range keys {
		a.relinkClient(k, restored[k])
	}
	for _, t := range named {
		if t.state == bindActive && t.hostname != "" && t.live(now) && a.nameHolder(t.hostname, now) == nil {
			a.byName[t.hostname] = t
			a.queueName(t)
		}
	}
}

// relinkClient makes byClient[k] a binding that is in memory: the current
// one if it is, else the newest earlier one still held, else restored.
func (a *allocator) relinkClient(k string, restored *binding) {
	cur := a.byClient[k]
	if cur != nil && !cur.failed() && a.byAddr[cur.addr] == cur {
		return
	}
	var t *binding
	if cur != nil {
		for t = wasClient(cur); t != nil && (t.failed() || a.byAddr[t.addr] != t); t = wasClient(t) {
		}
	}
	if t == nil {
		t = restored
	}
	if t == nil {
		delete(a.byClient, k)
		return
	}
	a.byClient[k] = t
}

// wasClient is the client's binding that b replaced, while b's record is
// not written.
func wasClient(b *binding) *binding {
	if b.undo == nil {
		return nil
	}
	return b.undo.wasClient
}

// remove deletes addr's binding (leases delete) and returns the deletion
// record to write; it stands in for the binding until written.
func (a *allocator) remove(addr uint32) *binding {
	old := a.byAddr[addr]
	d := &binding{addr: addr, state: bindDeleted, undo: &undo{was: old}}
	if old == nil {
		d.undo.was = a.tombs[addr]
	}
	a.forget(addr)
	a.tombs[addr] = d
	return d
}

// durable returns the bindings whose records are written, in address
// order: for an address whose latest decision is not written yet, what it
// replaced. A compaction writes these, so a record that fails later is not
// in the compacted log either.
func (a *allocator) durable() []*binding {
	var out []*binding
	add := func(b *binding) {
		for b != nil && b.pending() {
			b = b.undo.was
		}
		if b != nil && b.state != bindDeleted {
			out = append(out, b)
		}
	}
	for _, b := range a.bindings() {
		add(b)
	}
	for addr, d := range a.tombs {
		if a.byAddr[addr] == nil {
			add(d)
		}
	}
	slices.SortFunc(out, func(x, y *binding) int { return cmp.Compare(x.addr, y.addr) })
	return out
}
