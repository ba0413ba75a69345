package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"

	"gatewayd/config"
)

// Options configure the router role.
type Options struct {
	// Interface is the NIC; the config's [gateway] interface wins when set.
	Interface string
	// Handle is a netlink handle in the managed namespace; nil makes one in
	// the namespace of the thread calling Open (closed by Close).
	Handle *netlink.Handle
	// StateDir holds router.json, the record of owned routes and changed
	// sysctls.
	StateDir string
	// Logger receives the role's logs; nil means slog.Default().
	Logger *slog.Logger
	// SysctlDir is where sysctls are read and written; "" means /proc/sys.
	SysctlDir string
}

// Router is the router role. Its methods are safe for concurrent use.
type Router struct {
	log    *slog.Logger
	nic    string
	h      *netlink.Handle
	ownsH  bool
	sys    procSys
	mu     sync.Mutex
	rec    *record
	status Status
	writes atomic.Uint64
	closed bool
}

// Status is the role's state for `gatewayd status`.
type Status struct {
	// Held is true while the router alias is held here and the role applied.
	Held      bool   `json:"held"`
	Interface string `json:"interface,omitempty"`
	Upstream  string `json:"upstream,omitempty"`
	// Forwarding is what Set last left net.ipv4.ip_forward at.
	Forwarding bool `json:"forwarding"`
	// Routes are the routes gatewayd owns.
	Routes []string `json:"routes"`
	// Error is the last Set's error, if any.
	Error string `json:"error,omitempty"`
}

// Open prepares the role; it changes nothing until Set.
func Open(opts Options) (*Router, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	rec, err := loadRecord(opts.StateDir)
	if err != nil {
		return nil, err
	}
	r := &Router{log: log.With("role", "router"), nic: opts.Interface, h: opts.Handle, sys: procSys(opts.SysctlDir), rec: rec}
	if r.sys == "" {
		r.sys = "/proc/sys"
	}
	if r.h == nil {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("router: opening a netlink handle: %w", err)
		}
		r.h, r.ownsH = h, true
	}
	r.status.Routes = r.ownedRoutes()
	return r, nil
}

// Writes counts the kernel writes (sysctls, route changes) made so far.
func (r *Router) Writes() uint64 { return r.writes.Load() }

// Set applies the role for c: forwarding, redirects off, rp_filter, the
// upstream and static routes while the router alias is held here; the
// release of all of it otherwise. It is idempotent: values and routes
// already right are only read. It returns what it could not do, having done
// the rest.
func (r *Router) Set(ctx context.Context, c *config.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("router: the role is closed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d := want(c, r.nic)
	var err error
	if d.held {
		err = r.hold(d)
	} else {
		err = r.release()
	}
	r.status = Status{Held: d.held, Interface: d.nic, Routes: r.ownedRoutes()}
	if d.held && c.Router.Upstream.IsValid() {
		r.status.Upstream = c.Router.Upstream.String()
	}
	if v, rerr := r.sys.read("net/ipv4/ip_forward"); rerr == nil {
		r.status.Forwarding = v == "1"
	}
	if err != nil {
		r.status.Error = err.Error()
		return fmt.Errorf("router role: %w", err)
	}
	return nil
}

// hold applies the desired state: sysctls first (forwarding before routes
// that would be useless without it), then routes.
func (r *Router) hold(d desired) error {
	n, errS := r.setSysctls(d.sysctls)
	m, errR := r.setRoutes(d.routes)
	r.writes.Add(uint64(n + m))
	return errors.Join(errS, errR)
}

// release removes owned routes and restores the sysctls the role changed.
func (r *Router) release() error {
	m, errR := r.setRoutes(nil)
	n, errS := r.restoreSysctls(func(string) bool { return true })
	r.writes.Add(uint64(n + m))
	return errors.Join(errR, errS)
}

func (r *Router) ownedRoutes() []string {
	out := []string{}
	for _, rt := range r.rec.Routes {
		out = append(out, rt.String())
	}
	return out
}

// Plan lists, as commands, what Set(c) would change now: sysctl writes and
// route changes, and the conflicts it would report.
func (r *Router) Plan(c *config.Config) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := want(c, r.nic)
	var out []string
	if d.held {
		for _, s := range d.sysctls {
			if cur, err := r.sys.read(s.Key); err != nil || cur != s.Value {
				out = append(out, fmt.Sprintf("sysctl -w %s=%s", s.name(), s.Value))
			}
		}
	}
	kernel, err := r.listRoutes()
	if err != nil {
		return append(out, "# "+err.Error())
	}
	steps, conflicts := planRoutes(d.routes, kernel, r.rec)
	for _, s := range steps {
		out = append(out, s.String())
	}
	for _, e := range conflicts {
		out = append(out, "# cannot apply "+e.Error())
	}
	if !d.held {
		for i := len(r.rec.Sysctls) - 1; i >= 0; i-- {
			s := r.rec.Sysctls[i]
			if cur, err := r.sys.read(s.Key); err == nil && cur == s.Set {
				out = append(out, fmt.Sprintf("sysctl -w %s=%s", sysctl{Key: s.Key}.name(), s.Was))
			}
		}
	}
	return out
}

// Status returns what the last Set achieved.
func (r *Router) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Routes = append([]string(nil), s.Routes...)
	return s
}

// Purge removes the routes the role added and puts back the sysctls it
// changed: the removal command.
func (r *Router) Purge() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.release()
	r.status = Status{Routes: r.ownedRoutes()}
	if err != nil {
		return fmt.Errorf("router role: removing: %w", err)
	}
	return nil
}

// Close releases the netlink handle it made. Routes and sysctls stay: the
// box keeps routing while gatewayd restarts.
func (r *Router) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.ownsH {
		r.h.Close()
	}
	return nil
}
