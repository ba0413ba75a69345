package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
)

// Options configure the router role.
type Options struct {
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
	h      *netlink.Handle // in the namespace Open ran in
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

// Open prepares the role; it changes nothing until Set. Its netlink handle is
// opened in the network namespace of the calling goroutine's thread and
// kept; sysctls are read and written from the thread calling each method.
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
	r := &Router{log: log.With("role", "router"), h: h, sys: procSys(opts.SysctlDir), rec: rec}
	if r.sys == "" {
		r.sys = "/proc/sys"
	}
	r.status.Routes = r.ownedRoutes()
	return r, nil
}

// Writes counts the kernel writes (sysctls, route changes) made so far.
func (r *Router) Writes() uint64 { return r.writes.Load() }

// Set makes the box hold c: forwarding, redirects off and rp_filter on
// c.Interface, and c's routes; Set(nil) releases all of it (see the package
// doc). It is idempotent: values and routes already right are only read. It
// returns what it could not do, having done the rest; each error names what
// failed (a sysctl, a route), and the caller names the role.
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
	if c != nil {
		err = r.hold(c)
		r.status = Status{Held: true, Interface: c.Interface, Upstream: upstream(c)}
	} else {
		err = r.release()
		r.status = Status{}
	}
	r.status.Routes = r.ownedRoutes()
	if v, rerr := r.sys.read("net/ipv4/ip_forward"); rerr == nil {
		r.status.Forwarding = v == "1"
	}
	if err != nil {
		r.status.Error = err.Error()
	}
	return err
}

// hold applies c: sysctls first (forwarding before routes that would be
// useless without it), then routes.
func (r *Router) hold(c *Config) error {
	n, errS := r.setSysctls(forwardingSysctls(c.Interface))
	m, errR := r.setRoutes(wantedRoutes(c))
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
func (r *Router) Plan(c *Config) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	var routes []Route
	if c != nil {
		for _, s := range forwardingSysctls(c.Interface) {
			if cur, err := r.sys.read(s.Key); err != nil || cur != s.Value {
				out = append(out, fmt.Sprintf("sysctl -w %s=%s", s.name(), s.Value))
			}
		}
		routes = wantedRoutes(c)
	}
	kernel, err := r.listRoutes()
	if err != nil {
		return append(out, "# "+err.Error())
	}
	steps, conflicts := planRoutes(routes, kernel, r.rec)
	for _, s := range steps {
		out = append(out, s.String())
	}
	for _, e := range conflicts {
		out = append(out, "# cannot apply "+e.Error())
	}
	if c == nil {
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
	return err
}

// Close releases the netlink handle. Routes and sysctls stay: the box keeps
// routing while gatewayd restarts.
func (r *Router) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.h.Close()
	return nil
}
