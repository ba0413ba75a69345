package dns

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Server.
type Options struct {
	// Logger is the parent logger; the server logs with role=dns. nil
	// means slog.Default().
	Logger *slog.Logger
	// Net opens every socket of the role; nil means the net package.
	Net Net
}

// Server is the DNS role. The controller makes one with New, calls Set
// with the role's Config after every reload, and Close at the end. The
// DHCP role publishes its clients' names through PublishLease and
// WithdrawLease. All methods are safe for concurrent use, from any
// goroutine: the sockets go through Options.Net.
type Server struct {
	log      *slog.Logger
	net      Net
	leases   *leaseTable
	qlog     *queryLog
	counters counters
	lat      latencies
	ctx      context.Context // ends with Close: in-flight forwards give up
	cancel   context.CancelFunc
	pipe     atomic.Pointer[pipeline]

	mu        sync.Mutex // serializes Set and Close; guards what follows
	closed    bool
	cfg       *Config // what runs: Set's own copy
	lis       *listeners
	cache     *cacheStore
	flight    *flight[cacheKey, flightResult]
	upstreams map[netip.AddrPort]*upstream
	avoid     *portSet // source ports upstream queries never take
}

// New makes a stopped Server; Set starts it.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	n := opts.Net
	if n == nil {
		n = hostNet{}
	}
	s := &Server{
		log:       log.With("role", "dns"),
		net:       n,
		leases:    newLeaseTable(),
		flight:    &flight[cacheKey, flightResult]{},
		upstreams: map[netip.AddrPort]*upstream{},
	}
	s.qlog = newQueryLog(s.log)
	var err error
	if s.avoid, err = avoidedPorts(reservedPortsFile); err != nil {
		s.log.Warn("some reserved ports are not avoided", "err", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Set applies c; nil stops the role (no [dns] section, or another box
// holds the DNS alias). The same config again does nothing. Records,
// upstreams, forwarding and the client list change without touching the
// listeners; the listeners move only when c.Listen changes, and then the
// new ones serve before the old ones close. On error the previous state
// keeps running. Set keeps a copy of c: the caller may reuse it.
func (s *Server) Set(ctx context.Context, c *Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("the server is closed")
	}
	if c == nil {
		return s.stopLocked()
	}
	if s.cfg != nil && reflect.DeepEqual(s.cfg, c) {
		return nil
	}
	c = c.clone()
	old := s.lis
	addr := netip.AddrPortFrom(c.Listen, 53)
	if old == nil || old.addr != addr {
		l, err := listen(s.net, addr, s)
		if err != nil {
			return err
		}
		s.lis = l
	}
	s.swap(c)
	if old != nil && old != s.lis {
		if err := old.close(); err != nil {
			s.log.Warn("closing the old listeners", "addr", old.addr.String(), "err", err)
		}
		s.log.Info("DNS listeners moved", "addr", addr.String(), "from", old.addr.String())
	} else if old == nil {
		s.log.Info("DNS role started", "addr", addr.String(), "domain", c.Domain)
	} else {
		s.log.Info("DNS config applied", "addr", addr.String())
	}
	return nil
}

// swap builds the pipeline for c, with the cache and upstreams carried
// over where they still fit, and makes it the one queries use.
func (s *Server) swap(c *Config) {
	prev := s.cfg
	switch {
	case c.Cache.Size <= 0:
		s.cache = nil
	case prev == nil || prev.Cache.Size != c.Cache.Size || s.cache == nil:
		s.cache = newCacheStore(c.Cache.Size)
	case !reflect.DeepEqual(prev.Forward, c.Forward) || prev.Rebind != c.Rebind ||
		!reflect.DeepEqual(prev.RebindAllow, c.RebindAllow) || prev.Cache != c.Cache:
		s.cache.flush() // answers came through other routes or rules
	}
	used := map[netip.AddrPort]bool{}
	get := func(a netip.AddrPort) *upstream {
		used[a] = true
		u := s.upstreams[a]
		if u == nil {
			u = newUpstream(a, s.net, s.avoid, s.log)
			s.upstreams[a] = u
		}
		return u
	}
	p := build(c, parts{
		leases: s.leases, cache: s.cache, flight: s.flight, upstreams: get,
		counters: &s.counters, now: time.Now, qlog: s.qlog,
	})
	s.pipe.Store(p)
	for a, u := range s.upstreams {
		if !used[a] {
			u.close()
			delete(s.upstreams, a)
		}
	}
	s.cfg = c
}

// stopLocked stops serving and forgets the running state; lease names stay.
func (s *Server) stopLocked() error {
	s.pipe.Store(nil)
	var err error
	if s.lis != nil {
		err = s.lis.close()
		s.log.Info("DNS role stopped", "addr", s.lis.addr.String())
		s.lis = nil
	}
	for a, u := range s.upstreams {
		u.close()
		delete(s.upstreams, a)
	}
	s.cfg, s.cache = nil, nil
	return err
}

// Close stops the role. It does not remove the alias or touch the firewall.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	return s.stopLocked()
}

// PublishLease makes host.<domain> resolve to addr and addr back to it, as
// long as no config name claims host. Hostnames that are not valid DNS
// labels are ignored; only the first label of a dotted name is used.
func (s *Server) PublishLease(host string, addr netip.Addr) {
	label := LeaseLabel(host)
	if label == "" || !addr.IsValid() {
		s.log.Debug("lease name not published", "host", host, "addr", addr.String())
		return
	}
	s.leases.publish(label, addr.Unmap())
}

// WithdrawLease removes what PublishLease(host, addr) added.
func (s *Server) WithdrawLease(host string, addr netip.Addr) {
	if label := LeaseLabel(host); label != "" {
		s.leases.withdraw(label, addr.Unmap())
	}
}

// Status reports the role's state and counters.
func (s *Server) Status() Status {
	var st Status
	s.counters.snapshot(&st)
	st.Latency = s.lat.snapshot()
	st.Leases = s.leases.len()
	p := s.pipe.Load()
	if p == nil {
		return st
	}
	st.Running = true
	st.Addr = netip.AddrPortFrom(p.cfg.Listen, 53).String()
	st.Domain = p.cfg.Domain
	if p.cache != nil {
		st.Cache = p.cache.status()
	}
	st.Upstreams = p.routes.status()
	return st
}

// status lists the upstreams of every route, the default route first.
func (t *routeTable) status() []UpstreamStatus {
	if t == nil {
		return nil
	}
	var out []UpstreamStatus
	for _, u := range t.def.pool.upstreams {
		out = append(out, u.status(""))
	}
	for _, d := range slices.Sorted(maps.Keys(t.byDomain)) {
		for _, u := range t.byDomain[d].pool.upstreams {
			out = append(out, u.status(d))
		}
	}
	return out
}
