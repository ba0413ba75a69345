package router

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeProto tags the routes gatewayd adds (ip route shows "proto 177").
const routeProto = netlink.RouteProtocol(177)

// Pending is a part of the Config that Set could not apply yet because the
// kernel cannot take it now (an interface absent or down, a next hop on no
// subnet yet, no DHCP lease yet). It is not an error: a later Set with the
// same Config applies it as soon as it can.
type Pending struct {
	What   string `json:"what"`   // the step, as ip or sysctl would take it
	Reason string `json:"reason"` // why it waits
}

// routeStep is one change to the routes.
type routeStep struct {
	op    string // "add", "replace", "del"
	route Route
	old   Route // the route a replace takes over from
}

func (s routeStep) String() string { return "ip route " + s.op + " " + s.route.String() }

// planRoutes compares the desired routes with the kernel's and the record:
// adds and replaces first, then deletes of owned routes no longer wanted.
// A desired route the kernel has in another form that gatewayd does not own
// is a conflict, reported and left alone. A desired route whose next hop
// cannot be reached now is pending; an owned route it would replace is
// deleted (the Config no longer wants it), so the kernel never keeps a
// route the Config does not name.
func planRoutes(want []Route, k *kernelState, rec *record) (steps []routeStep, pending []Pending, conflicts []error) {
	wanted := map[netip.Prefix]bool{}
	for _, w := range want {
		wanted[w.To] = true
		kr, exists := k.routes[w.To]
		var old *Route
		switch {
		case exists && kr.Route == w:
			continue // present; owned or not, nothing to do
		case exists:
			o, ok := rec.ownedTo(w)
			if !ok || !kr.mine(o) {
				conflicts = append(conflicts, fmt.Errorf("route %s: the kernel has %s, which gatewayd did not add; remove it or change the config", w, kr.Route))
				continue
			}
			old = &o
		}
		if why := k.unreachable(w); why != "" {
			pending = append(pending, Pending{What: "ip route add " + w.String(), Reason: why})
			if old != nil {
				steps = append(steps, routeStep{op: "del", route: *old})
			}
			continue
		}
		if old != nil {
			steps = append(steps, routeStep{op: "replace", route: w, old: *old})
		} else {
			steps = append(steps, routeStep{op: "add", route: w})
		}
	}
	for _, o := range rec.Routes {
		if wanted[o.To] {
			continue
		}
		if kr, ok := k.routes[o.To]; ok && kr.mine(o) {
			steps = append(steps, routeStep{op: "del", route: o})
		}
	}
	return steps, pending, conflicts
}

// setRoutes reconciles the routes with k, returning the kernel changes made
// and what waits. Each route about to be added is in the record before the
// add (one write for all), so a crash never leaves a route of gatewayd's
// that the record does not name; an add that fails takes it out again.
func (r *Router) setRoutes(want []Route, k *kernelState) (int, []Pending, error) {
	r.forgetGoneRoutes(k)
	steps, pending, errs := planRoutes(want, k, r.rec)
	var intents []Route
	for _, s := range steps {
		if s.op != "del" {
			r.rec.remember(s.route)
			intents = append(intents, s.route)
		}
	}
	if len(intents) > 0 {
		if err := r.rec.save(); err != nil {
			for _, rt := range intents {
				r.rec.forget(rt)
			}
			return 0, pending, errors.Join(append(errs, fmt.Errorf("no route changed: %w", err))...)
		}
	}
	writes := 0
	for _, s := range steps {
		err := r.applyRoute(s)
		switch {
		case err == nil:
			writes++
			r.log.Info("route changed", "op", s.op, "route", s.route.String())
		case s.op != "del" && unreachableErr(err):
			// The next hop went between the dump and the add.
			pending = append(pending, Pending{What: "ip route add " + s.route.String(), Reason: err.Error()})
		default:
			errs = append(errs, err)
		}
	}
	if err := r.rec.saveIfDirty(); err != nil {
		errs = append(errs, err)
	}
	return writes, pending, errors.Join(errs...)
}

// forgetGoneRoutes drops owned routes the kernel no longer has as added
// (deleted by someone else, or by the kernel when the link went down or the
// NIC went away): the record holds what is achieved. The intent to have a
// desired route is the Config's, so the next plan adds it again.
func (r *Router) forgetGoneRoutes(k *kernelState) {
	for _, o := range append([]Route(nil), r.rec.Routes...) {
		if kr, ok := k.routes[o.To]; !ok || !kr.mine(o) {
			r.rec.forget(o)
		}
	}
}

// unreachableErr reports whether a route add failed because the next hop
// cannot be reached now, rather than because of the route itself.
func unreachableErr(err error) bool {
	return errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.ENETDOWN) ||
		errors.Is(err, unix.ENODEV) || errors.Is(err, errLinkAbsent)
}

var errLinkAbsent = errors.New("interface absent")

// applyRoute makes one change and records it. An add or replace is already
// in the record (setRoutes put it there); a failed one is taken out.
func (r *Router) applyRoute(s routeStep) error {
	nr, err := r.netlinkRoute(s.route)
	if err == nil {
		switch s.op {
		case "add":
			err = r.h.RouteAdd(nr)
		case "replace":
			err = r.h.RouteReplace(nr)
		case "del":
			err = r.h.RouteDel(nr)
		}
	}
	if err != nil {
		if s.op != "del" {
			r.rec.forget(s.route)
		}
		return fmt.Errorf("%s: %w", s, err)
	}
	switch s.op {
	case "replace":
		r.rec.forget(s.old)
	case "del":
		r.rec.forget(s.route)
	}
	return nil
}

func (r *Router) netlinkRoute(rt Route) (*netlink.Route, error) {
	link, err := r.h.LinkByName(rt.Interface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%w: %s", errLinkAbsent, rt.Interface)
		}
		return nil, fmt.Errorf("finding interface %s: %w", rt.Interface, err)
	}
	return &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: rt.To.Addr().AsSlice(), Mask: net.CIDRMask(rt.To.Bits(), 32)},
		Gw:        rt.Via.AsSlice(),
		Protocol:  routeProto,
		Table:     unix.RT_TABLE_MAIN,
		Scope:     netlink.SCOPE_UNIVERSE,
		Type:      unix.RTN_UNICAST,
	}, nil
}
