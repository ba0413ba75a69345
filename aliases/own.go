package aliases

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Owned returns the addresses gatewayd added that are on the NIC now:
// none while the NIC is absent.
func (n *NIC) Owned() ([]netip.Prefix, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, kernel, err := n.kernelAddrs()
	if errors.Is(err, ErrNoLink) {
		return nil, nil
	}
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

// AliasStatus is one desired alias as the kernel has it now.
type AliasStatus struct {
	Alias    Alias
	Present  bool   // the exact address/length is on the NIC
	Label    string // the kernel's label, when present
	Owned    bool   // gatewayd added it
	Conflict string // non-empty: the address is on the NIC but not gatewayd's
	Waiting  string // non-empty: the alias waits for the NIC, which is absent
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
	var waiting string
	if errors.Is(err, ErrNoLink) {
		waiting, err = err.Error(), nil
	}
	var steps []Step
	if err == nil {
		steps = plan(n.ifname, n.desired, kernel, n.owned)
	}
	for _, d := range n.desired {
		st := AliasStatus{Alias: d, Err: err, Waiting: waiting}
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

// LinkStatus is the NIC as the kernel has it now.
type LinkStatus struct {
	Interface string
	Present   bool // the interface exists
	Up        bool // up with a carrier: announcements go out
	Index     int
	// Waiting says what waits for the NIC: it is absent (the aliases are
	// added when it appears) or down (they are announced when it comes
	// up). Empty when nothing waits.
	Waiting string
	Err     error // the kernel could not be asked
}

// Link reports the NIC itself, for status.
func (n *NIC) Link() LinkStatus {
	st := LinkStatus{Interface: n.ifname}
	link, err := n.link()
	switch {
	case errors.Is(err, ErrNoLink):
		st.Waiting = err.Error()
	case err != nil:
		st.Err = err
	default:
		st.Present, st.Index, st.Up = true, link.Attrs().Index, isUp(link.Attrs())
		if !st.Up {
			st.Waiting = fmt.Sprintf("interface %s is down (or has no carrier): its aliases are announced when it comes up", n.ifname)
		}
	}
	return st
}

// Purge removes every address gatewayd owns on the NIC and forgets them;
// Watch stops putting anything back until the next Set. It returns the
// aliases it removed, and only those: an entry whose address is already
// gone is forgotten without being reported, and one removable refuses is
// forgotten with an error. While the NIC is absent it removes nothing.
func (n *NIC) Purge(ctx context.Context) ([]Alias, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.usable(); err != nil {
		return nil, err
	}
	n.desired = nil
	link, kernel, err := n.kernelAddrs()
	if errors.Is(err, ErrNoLink) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := n.ready(link); err != nil {
		return nil, err
	}
	errs := []error{n.forgetGone(kernel)}
	steps := plan(n.ifname, nil, kernel, n.owned)
	errs = append(errs, n.refuse(steps)...)
	if err := n.promoteBefore(link, steps, kernel); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	var removed []Alias
	for _, s := range steps {
		if s.Op != OpDel {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("purging %s: %w", n.ifname, err))
			break
		}
		if err := n.del(link, s.Alias); err != nil {
			errs = append(errs, err)
			continue
		}
		n.log.Info("purged", "alias", s.Alias.Name, "addr", s.Alias.Prefix)
		removed = append(removed, s.Alias)
	}
	if n.rec.hold(n.ifname, nil) {
		n.recDirty = true
	}
	errs = append(errs, n.saveRecord())
	return removed, errors.Join(errs...)
}

// Restores reports how many aliases Watch has put back after someone else
// removed them, and when it last did (zero: never).
func (n *NIC) Restores() (int, time.Time) {
	last := n.restored.Load()
	if last == 0 {
		return int(n.restores.Load()), time.Time{}
	}
	return int(n.restores.Load()), time.Unix(0, last)
}

// Disown undoes Adopt: it forgets owning the addresses (one durable write),
// so a failed apply that adopted them leaves them as it found them, someone
// else's. It changes nothing in the kernel.
func (n *NIC) Disown(adopted []Alias) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.usable(); err != nil {
		return err
	}
	for _, a := range adopted {
		n.rec.remove(n.ifname, a.Prefix)
		n.recDirty = true
	}
	if err := n.saveRecord(); err != nil {
		return fmt.Errorf("forgetting adopted aliases: %w", err)
	}
	return nil
}

// Adopt takes ownership of the addresses on the NIC that match a desired
// alias exactly (address, length and label) but that gatewayd did not add:
// leftovers of an old /etc/network/interfaces, or aliases a lost record
// forgot. It records them (one durable write) and returns them; from then
// on Set holds them as if it had added them. It changes nothing in the
// kernel, never adopts what it could never remove (removable: the NIC's own
// address), and needs the NIC present. An alias already owned, or not on
// the NIC exactly, is left out silently.
func (n *NIC) Adopt(desired []Alias) ([]Alias, error) {
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
		return nil, fmt.Errorf("adopting aliases: %w", err)
	}
	errs := []error{n.forgetGone(kernel)}
	var adopted []Alias
	for _, d := range want {
		for _, k := range kernel {
			if k.Prefix != d.Prefix || k.Label != d.Label {
				continue
			}
			if _, mine := n.owned(k.Prefix); mine {
				break
			}
			if why := removable(n.ifname, k, d); why != "" {
				errs = append(errs, fmt.Errorf("not adopting %s (label %s) on %s: %s", d, k.Label, n.ifname, why))
				break
			}
			n.rec.put(n.ifname, d)
			n.recDirty = true
			adopted = append(adopted, d)
		}
	}
	if err := n.saveRecord(); err != nil {
		for _, a := range adopted {
			n.rec.remove(n.ifname, a.Prefix)
		}
		return nil, errors.Join(append(errs, fmt.Errorf("adopting aliases: %w", err))...)
	}
	for _, a := range adopted {
		n.log.Info("adopted", "alias", a.Name, "addr", a.Prefix, "label", a.Label)
	}
	return adopted, errors.Join(errs...)
}
