package dhcp

import (
	"errors"
	"fmt"
	"net/netip"
)

// Status is the role's state for `gatewayd status`.
type Status struct {
	Running   bool         `json:"running"`
	Interface string       `json:"interface,omitempty"`
	Address   netip.Addr   `json:"address,omitzero"`
	Pools     []PoolStatus `json:"pools"`
	// Active leases, declined (quarantined) addresses and held offers.
	Active   int `json:"active"`
	Declined int `json:"declined"`
	Offers   int `json:"offers"`
	// Pending are the static leases whose address another client still
	// holds; their clients are served from the pools meanwhile.
	Pending  []PendingReservation `json:"pending_reservations,omitempty"`
	Counters Counters             `json:"counters"`
	Store    StoreStatus          `json:"store"`
}

// PoolStatus is one pool's occupation.
type PoolStatus struct {
	Range  string `json:"range"`
	Subnet string `json:"subnet"`
	Size   int    `json:"size"`
	// Used addresses are leased, offered, declined or reserved for a static lease.
	Used   int `json:"used"`
	Active int `json:"active"`
}

// Status reports the role's state and counters.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	st := Status{Running: s.cur != nil, Pools: []PoolStatus{}, Offers: len(s.h.alloc.offers)}
	if s.cur != nil {
		st.Interface, st.Address = s.cur.Interface, s.cur.Server.Addr()
	}
	a := s.h.alloc
	active := make([]int, len(a.pools))
	for addr, b := range a.byAddr {
		if !b.live(now) {
			continue
		}
		if b.state == bindDeclined {
			st.Declined++
			continue
		}
		st.Active++
		for i, p := range a.pools {
			if p.contains(addr) {
				active[i]++
			}
		}
	}
	for i, p := range a.pools {
		st.Pools = append(st.Pools, PoolStatus{
			Range: p.cfg.Range.String(), Subnet: p.cfg.Subnet.String(),
			Size: p.size(), Used: p.inUse(), Active: active[i],
		})
	}
	statics := make([]*staticLease, 0, len(a.staticAddr))
	for _, sl := range a.staticAddr {
		statics = append(statics, sl)
	}
	st.Pending = a.pending(statics, now)
	st.Counters = s.cnt.snapshot()
	st.Store = s.store.status()
	return st
}

// Leases returns the live leases (active and declined), in address order.
func (s *Server) Leases() []Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	out := []Lease{}
	for _, b := range s.h.alloc.bindings() {
		if b.live(now) {
			out = append(out, b.lease(now))
		}
	}
	return out
}

// Import adds leases (from Export or ReadLeases) to the role, durably,
// whether it is serving or not. Expired leases are skipped; a lease whose
// address is live-bound to another client here is skipped and reported. It
// returns how many were imported; nothing is imported when one is invalid.
func (s *Server) Import(leases []Lease) (int, error) {
	now := s.now()
	var binds []*binding
	var errs []error
	for _, l := range leases {
		b, err := bindingOf(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if b.live(now.Unix()) {
			binds = append(binds, b)
		}
	}
	if len(errs) > 0 {
		return 0, fmt.Errorf("importing leases: %w", errors.Join(errs...))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, errors.New("importing leases: the role is closed")
	}
	a := s.h.alloc
	var commit []*binding
	var names []nameChange
	for _, b := range binds {
		if old := a.byAddr[b.addr]; old != nil && old.live(now.Unix()) && old.key() != b.key() {
			errs = append(errs, fmt.Errorf("lease %s: already leased here to %s; skipped", u32Addr(b.addr), describe(old)))
			continue
		}
		c, n := s.importOne(b, now.Unix())
		commit = append(commit, c...)
		if s.cur != nil {
			names = append(names, n...)
		}
	}
	done := make(chan error, 1)
	n := len(binds) - len(errs)
	s.store.append(commit, func(err error) {
		if err == nil {
			applyNames(s.names, names)
		}
		done <- err
	})
	s.mu.Unlock()
	if err := <-done; err != nil {
		return 0, fmt.Errorf("importing leases: %w", err)
	}
	s.log.Info("leases imported", "count", n, "skipped", len(errs))
	if len(errs) > 0 {
		return n, fmt.Errorf("importing leases: %w", errors.Join(errs...))
	}
	return n, nil
}

// importOne stores b, whose address no other client holds here, and
// returns the bindings to write and the name changes. A host name another
// client's lease holds here stays with it (names.go): b is stored without.
// Called with s.mu held.
func (s *Server) importOne(b *binding, now int64) (commit []*binding, names []nameChange) {
	a := s.h.alloc
	old := a.byAddr[b.addr]
	oldNamed := old != nil && a.holdsName(old, now)
	prev := a.byClient[b.key()]
	prevNamed := prev != nil && prev.addr != b.addr && a.holdsName(prev, now)
	if b.hostname != "" {
		if hb := a.nameHolder(b.hostname, now); hb != nil && hb.addr != b.addr && hb.key() != b.key() {
			s.log.Info("an imported lease's host name is held by another lease here: imported without it",
				"host", b.hostname, "addr", u32Addr(b.addr), "holder", u32Addr(hb.addr))
			b.hostname = ""
		}
	}
	if oldNamed && old.hostname != b.hostname {
		names = append(names, nameChange{host: old.hostname, addr: u32Addr(b.addr)})
	}
	commit = []*binding{b}
	if moved := a.put(b); moved != nil {
		commit = append(commit, moved)
		if prevNamed {
			names = append(names, nameChange{host: moved.hostname, addr: u32Addr(moved.addr)})
		}
	}
	if b.state == bindActive && b.hostname != "" && !(oldNamed && old.hostname == b.hostname) {
		names = append(names, nameChange{publish: true, host: b.hostname, addr: u32Addr(b.addr)})
	}
	return commit, names
}

// describe names a binding's client for messages.
func describe(b *binding) string {
	if b.clientID != "" {
		return "client id " + colonHex(b.clientID)
	}
	return "MAC " + colonHex(b.mac)
}
