package router

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

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
	op   string // "add", "del"
	addr ownedAddr
}

func (s addrStep) String() string { return "ip addr " + s.op + " " + s.addr.String() }

// planAddrs compares the wanted addresses with the kernel's and the record:
// a wanted address missing from its interface is added (pending while the
// interface is absent), an owned one no longer wanted is deleted if it is
// still there. A wanted address already there that gatewayd did not add is
// left alone and never becomes gatewayd's.
func planAddrs(want []ownedAddr, k *kernelState, rec *record) (adds, dels []addrStep, pending []Pending) {
	for _, w := range want {
		switch {
		case slices.Contains(k.addrs[w.Interface], w.Address):
		case !k.hasLink(w.Interface):
			pending = append(pending, Pending{What: "ip addr add " + w.String(), Reason: "interface " + w.Interface + " is absent"})
		default:
			adds = append(adds, addrStep{op: "add", addr: w})
		}
	}
	for _, o := range rec.Addresses {
		if !slices.Contains(want, o) && slices.Contains(k.addrs[o.Interface], o.Address) {
			dels = append(dels, addrStep{op: "del", addr: o})
		}
	}
	return adds, dels, pending
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
// write for all); a failed add is taken out again.
func (r *Router) addAddrs(adds []addrStep) (int, error) {
	if len(adds) == 0 {
		return 0, nil
	}
	for _, s := range adds {
		r.rec.rememberAddr(s.addr)
	}
	if err := r.rec.save(); err != nil {
		for _, s := range adds {
			r.rec.forgetAddr(s.addr)
		}
		return 0, fmt.Errorf("no address added: %w", err)
	}
	var errs []error
	writes := 0
	for _, s := range adds {
		if err := r.applyAddr(s); err != nil {
			r.rec.forgetAddr(s.addr)
			errs = append(errs, err)
			continue
		}
		writes++
		r.log.Info("address changed", "op", s.op, "addr", s.addr.String())
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
		if s.op == "add" {
			err = r.h.AddrAdd(l, a)
		} else {
			err = r.h.AddrDel(l, a)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}
