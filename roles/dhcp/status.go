package dhcp

import (
	"net/netip"
)

// Status is the role's state for `gatewayd status`.
type Status struct {
	// Running is set while the role holds a Config (Set with one).
	Running bool `json:"running"`
	// Waiting says why a running role serves nothing: its NIC does not
	// exist (yet, or any more); it serves again at the first Set after the
	// NIC is back.
	Waiting   string       `json:"waiting,omitempty"`
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
		st.Interface, st.Address, st.Waiting = s.cur.Interface, s.cur.Server.Addr(), s.waiting
	}
	a := s.h.alloc
	// Counted as bindings change (occupancy.go): a walk of every binding
	// under the lock would stall serving at every scrape.
	var active []int
	st.Active, st.Declined, active = a.occ.live(now)
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
