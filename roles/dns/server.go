package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"gatewayd/config"
)

// Options configures a Server.
type Options struct {
	// Logger is the parent logger; the server logs with role=dns. nil
	// means slog.Default().
	Logger *slog.Logger
}

// Server is the DNS role. The controller makes one with New, calls Set
// with every config, and Close at the end. The DHCP role publishes its
// clients' names through PublishLease and WithdrawLease. All methods are
// safe for concurrent use.
type Server struct {
	log      *slog.Logger
	leases   *leaseTable
	counters counters
	ctx      context.Context // ends with Close: in-flight forwards give up
	cancel   context.CancelFunc
	pipe     atomic.Pointer[pipeline]

	mu        sync.Mutex // serializes Set and Close; guards what follows
	closed    bool
	spec      *spec
	sock      *sockets
	lis       *listeners
	cache     *cacheStore
	flight    *flight[cacheKey, *dns.Msg]
	upstreams map[netip.AddrPort]*upstream
}

// New makes a stopped Server; Set starts it.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		log:       log.With("role", "dns"),
		leases:    newLeaseTable(),
		flight:    &flight[cacheKey, *dns.Msg]{},
		upstreams: map[netip.AddrPort]*upstream{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Set applies the config. The same config again does nothing. Records,
// upstreams, forwarding and the client list change without touching the
// listeners; the listeners move only when the DNS alias's address changes,
// and then the new ones serve before the old ones close. Without a [dns]
// section, or when another box holds the DNS alias, the role stops. On
// error the previous state keeps running.
//
// The sockets live in the network namespace of the thread that starts the
// role (the first Set, or the first after a stop).
func (s *Server) Set(ctx context.Context, c *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("setting the DNS role: the server is closed")
	}
	sp, run := specFrom(c)
	if !run {
		return s.stopLocked()
	}
	if s.spec != nil && reflect.DeepEqual(s.spec, sp) {
		return nil
	}
	if s.sock == nil {
		sock, err := captureSockets()
		if err != nil {
			return fmt.Errorf("starting the DNS role: %w", err)
		}
		s.sock = sock
	}
	old := s.lis
	addr := netip.AddrPortFrom(sp.Listen, 53)
	if old == nil || old.addr != addr {
		l, err := listen(s.sock, addr, s)
		if err != nil {
			if old == nil {
				s.sock.close()
				s.sock = nil
			}
			return fmt.Errorf("starting the DNS role on %s: %w", addr, err)
		}
		s.lis = l
	}
	s.swap(sp)
	if old != nil && old != s.lis {
		if err := old.close(); err != nil {
			s.log.Warn("closing the old listeners", "addr", old.addr.String(), "err", err)
		}
		s.log.Info("DNS listeners moved", "addr", addr.String(), "from", old.addr.String())
	} else if old == nil {
		s.log.Info("DNS role started", "addr", addr.String(), "domain", sp.Domain)
	} else {
		s.log.Info("DNS config applied", "addr", addr.String())
	}
	return nil
}

// swap builds the pipeline for sp, with the cache and upstreams carried
// over where they still fit, and makes it the one queries use.
func (s *Server) swap(sp *spec) {
	prev := s.spec
	switch {
	case sp.Cache.Size <= 0:
		s.cache = nil
	case prev == nil || prev.Cache.Size != sp.Cache.Size || s.cache == nil:
		s.cache = newCacheStore(sp.Cache.Size)
	case !reflect.DeepEqual(prev.Forward, sp.Forward) || prev.Rebind != sp.Rebind ||
		!reflect.DeepEqual(prev.RebindAllow, sp.RebindAllow) || prev.Cache != sp.Cache:
		s.cache.flush() // answers came through other routes or rules
	}
	used := map[netip.AddrPort]bool{}
	get := func(a netip.AddrPort) *upstream {
		used[a] = true
		u := s.upstreams[a]
		if u == nil {
			u = newUpstream(a, s.sock, s.log)
			s.upstreams[a] = u
		}
		return u
	}
	p := build(sp, parts{
		leases: s.leases, cache: s.cache, flight: s.flight, upstreams: get,
		counters: &s.counters, now: time.Now,
	})
	s.pipe.Store(p)
	for a, u := range s.upstreams {
		if !used[a] {
			u.close()
			delete(s.upstreams, a)
		}
	}
	s.spec = sp
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
	if s.sock != nil {
		s.sock.close()
		s.sock = nil
	}
	s.spec, s.cache = nil, nil
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
	label := leaseLabel(host)
	if label == "" || !addr.IsValid() {
		s.log.Debug("lease name not published", "host", host, "addr", addr.String())
		return
	}
	s.leases.publish(label, addr.Unmap())
}

// WithdrawLease removes what PublishLease(host, addr) added.
func (s *Server) WithdrawLease(host string, addr netip.Addr) {
	if label := leaseLabel(host); label != "" {
		s.leases.withdraw(label, addr.Unmap())
	}
}

// Status reports the role's state and counters.
func (s *Server) Status() Status {
	var st Status
	s.counters.snapshot(&st)
	st.Leases = s.leases.len()
	p := s.pipe.Load()
	if p == nil {
		return st
	}
	st.Running = true
	st.Addr = netip.AddrPortFrom(p.spec.Listen, 53).String()
	st.Domain = p.spec.Domain
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
