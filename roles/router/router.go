package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
)

// Options configure the router role.
type Options struct {
	// StateDir holds router.json, the record of owned routes, addresses
	// and changed sysctls, and the uplink's DHCP lease.
	StateDir string
	// Logger receives the role's logs; nil means slog.Default().
	Logger *slog.Logger
	// SysctlDir is where sysctls are read and written; "" means /proc/sys.
	SysctlDir string
}

// Router is the router role. Its methods are safe for concurrent use.
type Router struct {
	log    *slog.Logger
	h      *netlink.Handle // in the namespace Open ran in
	sys    procSys
	writes atomic.Uint64

	mu         sync.Mutex
	rec        *record
	cur        *Config     // what the last Set holds; nil: released
	client     *dhcpClient // the uplink's DHCP client; nil without one
	forwarding bool        // ip_forward as the last Set left it
	sysPending []Pending   // from the last Set's sysctls
	netPending []Pending   // from the last reconcile of addresses and routes
	// promoted are the interfaces on which the last Set saw
	// promote_secondaries = 1: only there are owned addresses deleted.
	promoted map[string]bool
	setErr   error // the last Set's
	leaseErr error // the last lease apply's, since that Set
	closed   bool

	wake     chan struct{} // the DHCP client's lease changed
	quit     chan struct{}
	loopDone chan struct{}
}

// Status is the role's state for `gatewayd status`.
type Status struct {
	// Held is true while the router alias is held here and the role applied.
	Held      bool   `json:"held"`
	Interface string `json:"interface,omitempty"`
	// Upstream is the default route's gateway: on the alias wire, or the
	// uplink's.
	Upstream string `json:"upstream,omitempty"`
	// Forwarding is what Set last left net.ipv4.ip_forward at.
	Forwarding bool `json:"forwarding"`
	// Routes are the routes gatewayd owns.
	Routes []string `json:"routes"`
	// Uplink is the WAN port, when the Config has one.
	Uplink *UplinkStatus `json:"uplink,omitempty"`
	// Pending are the parts of the Config that wait for the kernel (an
	// interface to appear or come up, a DHCP lease); empty when all of it
	// is applied.
	Pending []Pending `json:"pending,omitempty"`
	// Error is the last Set's error, if any (and a failed lease apply's).
	Error string `json:"error,omitempty"`
}

// UplinkStatus is the WAN port as the role holds it.
type UplinkStatus struct {
	Interface string `json:"interface"`
	// Address and Gateway are the WAN's; zero while a DHCP uplink has no
	// lease.
	Address netip.Prefix `json:"address,omitzero"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	// Owned is false when the address is on the interface but was put
	// there by someone else: gatewayd leaves it alone.
	Owned bool `json:"owned"`
	// DHCP is the lease; nil for a static uplink.
	DHCP *LeaseStatus `json:"dhcp,omitempty"`
}

// LeaseStatus is the uplink's DHCP client and its lease.
type LeaseStatus struct {
	// State is the client's: init (asking for a lease), init-reboot
	// (confirming the one it has after a restart or on a new socket),
	// bound, renewing (past T1), rebinding (past T2).
	State  string     `json:"state"`
	Server netip.Addr `json:"server,omitzero"`
	// DNS are the name servers the ISP offers (option 6). The role does
	// not use them; the controller may give them to the DNS role.
	DNS      []netip.Addr `json:"dns,omitempty"`
	Acquired time.Time    `json:"acquired,omitzero"`
	Renew    time.Time    `json:"renew,omitzero"`  // T1
	Rebind   time.Time    `json:"rebind,omitzero"` // T2
	Expires  time.Time    `json:"expires,omitzero"`
	// Renewals counts the leases extended: renewed, rebound, or confirmed
	// after a restart or on a new socket.
	Renewals int `json:"renewals"`
	// Error is the last exchange's failure, cleared by a success.
	Error string `json:"error,omitempty"`
}

// Open prepares the role; it changes nothing until Set. Its netlink handle is
// opened in the network namespace of the calling goroutine's thread and
// kept; sysctls are read and written, and the DHCP client's socket opened,
// from the thread calling each method.
func Open(opts Options) (*Router, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	rec, err := loadRecord(opts.StateDir)
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("opening a netlink handle: %w", err)
	}
	r := &Router{
		log: log.With("role", "router"), h: h, sys: procSys(opts.SysctlDir), rec: rec,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), loopDone: make(chan struct{}),
	}
	if r.sys == "" {
		r.sys = "/proc/sys"
	}
	go r.applyLoop()
	return r, nil
}

// Writes counts the kernel changes made so far: each sysctl written and
// each address or route added, replaced or removed (a failed attempt is
// not one). A Set with nothing to do adds none.
func (r *Router) Writes() uint64 { return r.writes.Load() }

// Set makes the box hold c: forwarding, redirects off, rp_filter on and
// accept_ra off on c.Interface, the uplink's address and accept_ra, and c's
// routes; Set(nil) releases all of it (see the package doc). It is
// idempotent: values and routes already right are only read, and nothing is
// written. What cannot be applied yet (an interface absent or down, a next
// hop on no subnet yet, no DHCP lease yet) is pending, shown in Status and
// applied by a later Set with the same c; it is not an error. Set returns
// what an operator must act on (a route someone else owns in the way, a
// sysctl it cannot write, a socket it cannot open), having done the rest;
// each error names what failed, and the caller names the role.
func (r *Router) Set(ctx context.Context, c *Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("the role is closed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if c == nil {
		err = r.release()
		r.cur = nil
	} else if err = c.check(); err == nil {
		// Held even when part of it failed: the lease goroutine applies
		// to what is held.
		r.cur = c.clone()
		err = r.hold(r.cur)
	}
	if v, rerr := r.sys.read("net/ipv4/ip_forward"); rerr == nil {
		r.forwarding = v == "1"
	}
	r.setErr, r.leaseErr = err, nil
	return err
}

// hold applies c: sysctls first (forwarding before routes that would be
// useless without it, promote_secondaries before any address is deleted),
// then the DHCP client, addresses and routes.
func (r *Router) hold(c *Config) error {
	wanted := wantedSysctls(c)
	want := wanted
	k, errK := r.readKernel(r.needAddrs(c))
	if errK == nil {
		want = append(slices.Clone(wanted), r.promoting(k, wanted)...)
	}
	n, pending, errS := r.setSysctls(want)
	r.sysPending = pending
	if errK != nil {
		r.writes.Add(uint64(n))
		return errors.Join(errS, errK)
	}
	r.checkPromoted(c)
	errC := r.setClient(c.Uplink, k)
	m, errN := r.reconcileNet(c, k)
	// A previous uplink's promote_secondaries was for its address's delete.
	p, errP := r.restoreSysctls(func(key string) bool { return !slices.ContainsFunc(wanted, keyIs(key)) && !r.stillPromoting(key) })
	r.writes.Add(uint64(n + m + p))
	return errors.Join(errS, errC, errN, errP)
}

// release gives the lease back, removes owned addresses and routes, and
// restores the sysctls the role changed.
func (r *Router) release() error {
	if r.client != nil {
		r.stopClient(true)
	}
	var m, p int
	var errP error
	k, errN := r.readKernel(r.needAddrs(nil))
	if errN == nil && r.rec.Lease != nil {
		r.releaseStored(k) // before its address goes
	}
	if errN == nil {
		p, _, errP = r.applySysctls(r.promoting(k, nil))
		r.checkPromoted(nil)
		m, errN = r.reconcileNet(nil, k)
	}
	n, errS := r.restoreSysctls(func(key string) bool { return !r.stillPromoting(key) })
	r.sysPending = nil
	r.writes.Add(uint64(p + n + m))
	return errors.Join(errP, errN, errS)
}

// promoting are the promote_secondaries values that deleting the owned
// addresses in k needs, on interfaces want has none for (a previous
// uplink's): set for the delete, put back after it.
func (r *Router) promoting(k *kernelState, want []sysctl) []sysctl {
	var out []sysctl
	for _, o := range r.rec.Addresses {
		s := promoteSysctl(o.Interface)
		if slices.Contains(k.addrs[o.Interface], o.Address) && !slices.ContainsFunc(want, keyIs(s.Key)) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkPromoted notes the interfaces where owned addresses may be deleted:
// those with an owned address, and c's uplink, on which
// promote_secondaries is 1 now. Elsewhere it could not be set, and a
// delete would take the subnet's other addresses with it.
func (r *Router) checkPromoted(c *Config) {
	r.promoted = map[string]bool{}
	devs := []string{}
	for _, o := range r.rec.Addresses {
		devs = append(devs, o.Interface)
	}
	if c != nil && c.Uplink != nil {
		devs = append(devs, c.Uplink.Interface)
	}
	for _, dev := range devs {
		if _, done := r.promoted[dev]; !done {
			v, err := r.sys.read(promoteSysctl(dev).Key)
			r.promoted[dev] = err == nil && v == "1"
		}
	}
}

// stillPromoting reports whether key is the promote_secondaries of an
// interface gatewayd still has an address on: it stays until the delete.
func (r *Router) stillPromoting(key string) bool {
	return slices.ContainsFunc(r.rec.Addresses, func(o ownedAddr) bool { return promoteSysctl(o.Interface).Key == key })
}

// needAddrs says whether a reconcile for c needs the address dump.
func (r *Router) needAddrs(c *Config) bool {
	return c != nil && c.Uplink != nil || len(r.rec.Addresses) > 0
}

// reconcileNet brings the WAN address and the routes in line with c (nil:
// none) and the lease: addresses added, then routes, then addresses
// removed, so a new address is there before a route needs it and an old one
// goes after the routes through it. It uses only the netlink handle and the
// record, never /proc/sys, so the lease goroutine can run it.
func (r *Router) reconcileNet(c *Config, k *kernelState) (int, error) {
	r.syncLease()
	w := r.wan(c)
	r.forgetGoneAddrs(k)
	adds, dels, pending := planAddrs(w, time.Now(), k, r.rec)
	dels, held := r.deletable(dels)
	pending = append(pending, held...)
	n, errA := r.addAddrs(adds)
	var errL error
	if n > 0 {
		errL = r.readRoutes(k) // the new address brought its subnet's route
	}
	var want []Route
	if c != nil {
		want = wantedRoutes(c, w)
	}
	m, pendR, errR := r.setRoutes(want, k)
	d, errD := r.delAddrs(dels)
	r.netPending = append(pending, pendR...)
	return n + m + d, errors.Join(errA, errL, errR, errD, r.rec.saveIfDirty())
}

// wan is the uplink's address and gateway for c, from the lease with DHCP.
func (r *Router) wan(c *Config) wan {
	if c == nil || c.Uplink == nil {
		return wan{}
	}
	u := c.Uplink
	if !u.DHCP {
		return wan{Interface: u.Interface, Address: u.Address, Gateway: u.Gateway}
	}
	w := wan{Interface: u.Interface}
	if r.client != nil && r.client.ifname == u.Interface {
		if l := r.client.current(); l != nil {
			w.Address, w.Gateway, w.Expires = l.addr, l.gateway, l.validUntil()
		}
	}
	return w
}

// Status returns what the role holds now: what the last Set achieved and,
// with a DHCP uplink, the lease as it is.
func (r *Router) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cur
	st := Status{Held: c != nil, Forwarding: r.forwarding, Routes: []string{}}
	for _, rt := range r.rec.Routes {
		st.Routes = append(st.Routes, rt.String())
	}
	if c != nil {
		w := r.wan(c)
		st.Interface, st.Upstream = c.Interface, upstream(c, w)
		if u := c.Uplink; u != nil {
			st.Uplink = &UplinkStatus{Interface: u.Interface, Address: w.Address, Gateway: w.Gateway,
				Owned: slices.Contains(r.rec.Addresses, ownedAddr{Interface: u.Interface, Address: w.Address})}
		}
	}
	st.Pending = slices.Clone(r.sysPending)
	if r.client != nil {
		if st.Uplink != nil {
			st.Uplink.DHCP = r.client.status()
		}
		st.Pending = append(st.Pending, r.client.pending()...)
	}
	st.Pending = append(st.Pending, r.netPending...)
	if err := errors.Join(r.setErr, r.leaseErr); err != nil {
		st.Error = err.Error()
	}
	return st
}

// Purge removes the routes and addresses the role added, releases the lease
// and puts back the sysctls it changed: the removal command.
func (r *Router) Purge() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.release()
	r.cur, r.setErr, r.leaseErr = nil, err, nil
	return err
}

// Holds reports whether the role holds anything in the kernel by its
// record: routes, addresses or changed sysctls (a previous run's, until Set
// or Purge releases them).
func (r *Router) Holds() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rec.Routes) > 0 || len(r.rec.Addresses) > 0 || len(r.rec.Sysctls) > 0
}

// Close stops the DHCP client, keeping its lease for the next start, and
// releases the netlink handle. Routes, addresses and sysctls stay: the box
// keeps routing while gatewayd restarts.
func (r *Router) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	var err error
	if r.client != nil {
		r.syncLease()
		_ = r.client.stop(false)
		r.client = nil
		err = r.rec.saveIfDirty()
	}
	r.mu.Unlock()
	close(r.quit)
	<-r.loopDone
	r.h.Close()
	return err
}
