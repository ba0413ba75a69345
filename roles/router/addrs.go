package router

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
)

// ownedAddr is an address gatewayd added to an interface: the WAN address.
type ownedAddr struct {
	Interface string       `json:"interface"`
	Address   netip.Prefix `json:"address"`
}

func (a ownedAddr) String() string { return a.Address.String() + " dev " + a.Interface }

// addrStep is one change to the addresses.
type addrStep struct {
	op   string // "add", "change" (its lifetimes), "del"
	addr ownedAddr
	// valid is the lifetime given (valid and preferred), in seconds;
	// permanent for a static address or an infinite lease.
	valid uint32
}

// permanent is the kernel's infinite address lifetime.
const permanent = 0xffffffff

func (s addrStep) String() string {
	out := "ip addr " + s.op + " " + s.addr.String()
	switch {
	case s.op == "del":
	case s.valid != permanent:
		out += fmt.Sprintf(" valid_lft %d preferred_lft %d", s.valid, s.valid)
	case s.op == "change":
		out += " valid_lft forever preferred_lft forever"
	}
	return out
}

// lifetime is how long an address may live from now to until (zero:
// permanent), in whole seconds, at least one: the kernel removes a leased
// address when its lease ends, even if gatewayd is not running then.
func lifetime(until, now time.Time) uint32 {
	if until.IsZero() {
		return permanent
	}
	s := (until.Sub(now) + time.Second - 1) / time.Second
	return uint32(max(1, min(s, permanent-1)))
}

// lifetimeSlack is how far the kernel's remaining lifetime of an owned
// address may be from the lease's before it is refreshed: the two count
// down together, apart from rounding.
const lifetimeSlack = 3

// planAddrs compares the WAN address with the kernel's and the record: a
// wanted address missing from its interface is added with the lease's
// lifetime (pending while the interface is absent), an owned one whose
// lifetime is not the lease's (renewed, or now static) is changed, an owned
// one no longer wanted is deleted if it is still there. A wanted address
// already there that gatewayd did not add is left alone and never becomes
// gatewayd's.
func planAddrs(w wan, now time.Time, k *kernelState, rec *record) (adds, dels []addrStep, pending []Pending) {
	want := wantedAddrs(w)
	valid := lifetime(w.Expires, now)
	for _, a := range want {
		switch {
		case slices.Contains(k.addrs[a.Interface], a.Address):
			if slices.Contains(rec.Addresses, a) && stale(k.valid[a], valid) {
				adds = append(adds, addrStep{op: "change", addr: a, valid: valid})
			}
		case !k.hasLink(a.Interface):
			pending = append(pending, Pending{What: "ip addr add " + a.String(), Reason: "interface " + a.Interface + " is absent"})
		default:
			adds = append(adds, addrStep{op: "add", addr: a, valid: valid})
		}
	}
	for _, o := range rec.Addresses {
		if !slices.Contains(want, o) && slices.Contains(k.addrs[o.Interface], o.Address) {
			dels = append(dels, addrStep{op: "del", addr: o})
		}
	}
	return adds, dels, pending
}

// stale reports whether the kernel's remaining lifetime has is not want.
func stale(has, want uint32) bool {
	if has == permanent || want == permanent {
		return has != want
	}
	return max(has, want)-min(has, want) > lifetimeSlack
}

func (k *kernelState) hasLink(name string) bool {
	_, ok := k.links[name]
	return ok
}

// forgetGoneAddrs drops owned addresses no longer on their interface (removed
// by someone else, or the NIC went away): one added again by hand later is
// not gatewayd's. The Config keeps the intent, so a wanted one is re-added.
func (r *Router) forgetGoneAddrs(k *kernelState) {
	for _, o := range append([]ownedAddr(nil), r.rec.Addresses...) {
		if !slices.Contains(k.addrs[o.Interface], o.Address) {
			r.rec.forgetAddr(o)
		}
	}
}

// addAddrs adds the addresses, each in the record before it is added (one
// write for all; a failed add is taken out again), and changes the
// lifetimes of owned ones, which the record does not keep.
func (r *Router) addAddrs(adds []addrStep) (int, error) {
	fresh := slices.DeleteFunc(slices.Clone(adds), func(s addrStep) bool { return s.op != "add" })
	if len(fresh) > 0 {
		for _, s := range fresh {
			r.rec.rememberAddr(s.addr)
		}
		if err := r.rec.save(); err != nil {
			for _, s := range fresh {
				r.rec.forgetAddr(s.addr)
			}
			return 0, fmt.Errorf("no address added: %w", err)
		}
	}
	var errs []error
	writes := 0
	for _, s := range adds {
		if err := r.applyAddr(s); err != nil {
			if s.op == "add" {
				r.rec.forgetAddr(s.addr)
			}
			errs = append(errs, err)
			continue
		}
		writes++
		if s.op == "add" {
			r.log.Info("address changed", "op", s.op, "addr", s.addr.String())
		} else {
			r.log.Debug("address lifetime changed", "addr", s.addr.String(), "valid", s.valid)
		}
	}
	return writes, errors.Join(errs...)
}

// deletable splits dels into those that may be made now and those that
// wait: on an interface without promote_secondaries (see checkPromoted) the
// kernel would delete the subnet's other addresses, which may not be
// gatewayd's, with the deleted one.
func (r *Router) deletable(dels []addrStep) (ok []addrStep, held []Pending) {
	for _, s := range dels {
		if r.promoted[s.addr.Interface] {
			ok = append(ok, s)
			continue
		}
		held = append(held, Pending{What: s.String(), Reason: promoteSysctl(s.addr.Interface).name() +
			" is not 1: the kernel would delete the subnet's other addresses with it"})
	}
	return ok, held
}

// delAddrs deletes owned addresses no longer wanted.
func (r *Router) delAddrs(dels []addrStep) (int, error) {
	var errs []error
	writes := 0
	for _, s := range dels {
		if err := r.applyAddr(s); err != nil {
			errs = append(errs, err)
			continue
		}
		r.rec.forgetAddr(s.addr)
		writes++
		r.log.Info("address changed", "op", s.op, "addr", s.addr.String())
	}
	return writes, errors.Join(errs...)
}

func (r *Router) applyAddr(s addrStep) error {
	l, err := r.h.LinkByName(s.addr.Interface)
	if err == nil {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: s.addr.Address.Addr().AsSlice(), Mask: net.CIDRMask(s.addr.Address.Bits(), 32)}}
		if s.valid != 0 && s.valid != permanent || s.op == "change" {
			a.ValidLft, a.PreferedLft = int(s.valid), int(s.valid)
		}
		switch s.op {
		case "add":
			err = r.h.AddrAdd(l, a)
		case "change":
			err = r.h.AddrReplace(l, a)
		default:
			err = r.h.AddrDel(l, a)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}
