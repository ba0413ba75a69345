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

// kernelRoute is a main-table IPv4 route as the kernel has it.
type kernelRoute struct {
	Route
	proto netlink.RouteProtocol
}

// mine reports whether the kernel's route is the owned route o: the record
// says gatewayd added it and the kernel still has it as added.
func (k kernelRoute) mine(o Route) bool { return k.Route == o && k.proto == routeProto }

// listRoutes returns the main table's IPv4 unicast routes with a gateway,
// keyed by destination (metric 0 only: the ones a new route would clash with).
func (r *Router) listRoutes() (map[netip.Prefix]kernelRoute, error) {
	routes, err := r.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	names := map[int]string{}
	out := map[netip.Prefix]kernelRoute{}
	for _, rt := range routes {
		if rt.Dst == nil || rt.Priority != 0 || rt.Type != unix.RTN_UNICAST {
			continue
		}
		ones, _ := rt.Dst.Mask.Size()
		addr, ok := netip.AddrFromSlice(rt.Dst.IP.To4())
		if !ok {
			continue
		}
		dst := netip.PrefixFrom(addr, ones)
		gw, _ := netip.AddrFromSlice(rt.Gw.To4())
		name, ok := names[rt.LinkIndex]
		if !ok {
			if l, err := r.h.LinkByIndex(rt.LinkIndex); err == nil {
				name = l.Attrs().Name
			}
			names[rt.LinkIndex] = name
		}
		out[dst] = kernelRoute{Route: Route{To: dst, Via: gw, Interface: name}, proto: rt.Protocol}
	}
	return out, nil
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
// is a conflict, reported and left alone.
func planRoutes(want []Route, kernel map[netip.Prefix]kernelRoute, rec *record) (steps []routeStep, conflicts []error) {
	wanted := map[netip.Prefix]bool{}
	for _, w := range want {
		wanted[w.To] = true
		k, exists := kernel[w.To]
		switch {
		case !exists:
			steps = append(steps, routeStep{op: "add", route: w})
		case k.Route == w:
			// Present; owned or not, nothing to do.
		default:
			if o, ok := rec.ownedTo(w); ok && k.mine(o) {
				steps = append(steps, routeStep{op: "replace", route: w, old: o})
			} else {
				conflicts = append(conflicts, fmt.Errorf("route %s: the kernel has %s, which gatewayd did not add; remove it or change the config", w, k.Route))
			}
		}
	}
	for _, o := range rec.Routes {
		if wanted[o.To] {
			continue
		}
		if k, ok := kernel[o.To]; ok && k.mine(o) {
			steps = append(steps, routeStep{op: "del", route: o})
		}
	}
	return steps, conflicts
}

// setRoutes reconciles the routes, recording each change as it succeeds.
func (r *Router) setRoutes(want []Route) (int, error) {
	kernel, err := r.listRoutes()
	if err != nil {
		return 0, err
	}
	steps, errs := planRoutes(want, kernel, r.rec)
	writes := 0
	for _, s := range steps {
		writes++
		if err := r.apply(s); err != nil {
			errs = append(errs, err)
			continue
		}
		r.log.Info("route changed", "op", s.op, "route", s.route.String())
	}
	// Forget owned routes the kernel no longer has as added (deleted or
	// changed by someone else, or the interface went away).
	for _, o := range append([]Route(nil), r.rec.Routes...) {
		if k, ok := kernel[o.To]; !ok || !k.mine(o) {
			if !containsStep(steps, o) {
				r.rec.forget(o)
			}
		}
	}
	if err := r.rec.save(); err != nil {
		errs = append(errs, err)
	}
	return writes, errors.Join(errs...)
}

func containsStep(steps []routeStep, o Route) bool {
	for _, s := range steps {
		if s.route == o && s.op != "del" {
			return true
		}
	}
	return false
}

func (r *Router) apply(s routeStep) error {
	nr, err := r.netlinkRoute(s.route)
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	switch s.op {
	case "add":
		err = r.h.RouteAdd(nr)
	case "replace":
		err = r.h.RouteReplace(nr)
	case "del":
		err = r.h.RouteDel(nr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	switch s.op {
	case "add":
		r.rec.remember(s.route)
	case "replace":
		r.rec.forget(s.old)
		r.rec.remember(s.route)
	case "del":
		r.rec.forget(s.route)
	}
	return nil
}

func (r *Router) netlinkRoute(rt Route) (*netlink.Route, error) {
	link, err := r.h.LinkByName(rt.Interface)
	if err != nil {
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
