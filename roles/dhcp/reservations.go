package dhcp

import (
	"net/netip"
	"slices"
	"time"
)

// A static lease never makes an address held twice. When its address is
// held by another client (a lease made before a reload added the static
// lease) or quarantined, its client is served from the pools until that
// lease ends or is released, while the holder keeps renewing; the static
// client then gets its address at its next DISCOVER, or at its next
// renewal, which is NAKed to send it there. Kea does the same (log message
// ALLOC_ENGINE_V4_DISCOVER_ADDRESS_CONFLICT), except that Kea NAKs the
// holder's renewal.

// PendingReservation is a static lease whose address another client holds:
// the role hands it to its client once that lease ends.
type PendingReservation struct {
	Address netip.Addr `json:"address"`
	// MAC and ClientID name the static lease's client, as in Lease.
	MAC      string `json:"mac,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// Holder is the lease in the way (state declined for a quarantine).
	Holder Lease `json:"holder"`
}

// reservation returns the client's static lease, and whether its address
// is free for it now; a client whose address is held elsewhere is logged
// once until it gets it.
func (h *handler) reservation(c client, now int64) (st *staticLease, free bool) {
	st = h.alloc.static(c.clientID, c.mac)
	if st == nil {
		return nil, false
	}
	b := h.alloc.holder(st, now)
	if b == nil {
		if h.pendingLogged[st.addr] {
			delete(h.pendingLogged, st.addr)
			h.log.Info("a static lease's address is free again: it goes to its client", "addr", u32Addr(st.addr), "mac", macString(c.mac))
		}
		return st, true
	}
	if !h.pendingLogged[st.addr] {
		if h.pendingLogged == nil {
			h.pendingLogged = map[uint32]bool{}
		}
		h.pendingLogged[st.addr] = true
		h.log.Warn("a static lease's address is held by another client: its client gets a pool address until that lease ends (address conflict)",
			"addr", u32Addr(st.addr), "mac", macString(c.mac), "holder", describe(b), "until", time.Unix(b.expires, 0).UTC())
	}
	return st, false
}

// pending lists the static leases of statics whose address another
// client holds at Unix time now, in address order.
func (a *allocator) pending(statics []*staticLease, now int64) []PendingReservation {
	var out []PendingReservation
	for _, st := range statics {
		if b := a.holder(st, now); b != nil {
			out = append(out, PendingReservation{
				Address: u32Addr(st.addr), MAC: colonHex(st.mac), ClientID: colonHex(st.clientID), Holder: b.lease(now),
			})
		}
	}
	slices.SortFunc(out, func(x, y PendingReservation) int { return x.Address.Compare(y.Address) })
	return out
}

// StaticConflicts reports the static leases of c whose address another
// client holds now: applied, each would wait for that lease to end (for
// `gatewayd plan` and `reload` to say so). A nil c means the running
// configuration; Status lists the same for it.
func (s *Server) StaticConflicts(c *Config) []PendingReservation {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == nil {
		c = s.cur
	}
	if c == nil {
		return nil
	}
	var list []*staticLease
	for _, st := range c.Static {
		list = append(list, newStaticLease(st))
	}
	return s.h.alloc.pending(list, s.now().Unix())
}
