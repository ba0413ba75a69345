package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

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
// returns how many were imported; nothing is imported when one is invalid,
// and on a partial import the error says how many went in and why the
// others did not.
func (s *Server) Import(leases []Lease) (int, error) {
	if s.opts.ReadOnly {
		return 0, fmt.Errorf("importing leases: %w", errReadOnlyRole)
	}
	now := s.now()
	var binds []*binding
	var errs []error
	expired := 0
	for _, l := range leases {
		b, err := bindingOf(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !b.live(now.Unix()) {
			expired++
			continue
		}
		binds = append(binds, b)
	}
	if len(errs) > 0 {
		return 0, fmt.Errorf("importing leases: nothing imported: %w", errors.Join(errs...))
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
	var outside []Lease
	if s.cur != nil {
		outside = s.cur.Outside(leases)
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
		return 0, fmt.Errorf("importing leases: nothing imported: %w", err)
	}
	s.log.Info("leases imported", "count", n, "conflicts", len(errs), "expired", expired)
	if len(outside) > 0 {
		s.log.Warn("imported leases outside every pool: kept until they end, never renewed", "count", len(outside), "first", outside[0].Address)
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("importing leases: imported %d of %d (%d expired, %d in conflict): %w", n, len(leases), expired, len(errs), errors.Join(errs...))
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

// Delete removes the lease of addr, or every lease of mac (a client may
// hold one per subnet); one of them is zero. The deletion is on the lease
// log before Delete returns, and the leases' names are withdrawn. It
// returns the leases removed, expired ones included (none: nothing
// matched), and works whether the role serves or not: the daemon's
// `leases-delete` and, with the daemon stopped, `gatewayd leases delete`.
// A quarantined (declined) address is deleted by address only.
func (s *Server) Delete(addr netip.Addr, mac net.HardwareAddr) ([]Lease, error) {
	what := addr.String()
	switch {
	case s.opts.ReadOnly:
		return nil, fmt.Errorf("deleting leases: %w", errReadOnlyRole)
	case addr.IsValid() == (len(mac) > 0):
		return nil, errors.New("deleting leases: give either an address or a MAC")
	case addr.IsValid() && !addr.Is4():
		return nil, fmt.Errorf("deleting the lease of %s: not an IPv4 address", addr)
	case len(mac) > 0:
		what = mac.String()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("deleting leases: the role is closed")
	}
	a := s.h.alloc
	now := s.now().Unix()
	var targets []*binding
	if addr.IsValid() {
		if b := a.byAddr[addrU32(addr)]; b != nil {
			targets = append(targets, b)
		}
	} else {
		for _, b := range a.bindings() {
			if b.state != bindDeclined && b.mac == string(mac) {
				targets = append(targets, b)
			}
		}
	}
	var recs []*binding
	var names []nameChange
	deleted := make([]Lease, 0, len(targets))
	for _, b := range targets {
		if s.cur != nil && a.holdsName(b, now) {
			names = append(names, nameChange{host: b.hostname, addr: u32Addr(b.addr)})
		}
		deleted = append(deleted, b.lease(now))
		recs = append(recs, a.remove(b.addr))
	}
	if len(recs) == 0 {
		s.mu.Unlock()
		return deleted, nil
	}
	done := make(chan error, 1)
	s.store.append(recs, func(err error) {
		if err == nil {
			applyNames(s.names, names)
		}
		done <- err
	})
	s.mu.Unlock()
	if err := <-done; err != nil {
		return nil, fmt.Errorf("deleting the lease of %s: nothing deleted: %w", what, err)
	}
	list := make([]string, len(deleted))
	for i, l := range deleted {
		list[i] = l.Address.String()
	}
	s.log.Info("leases deleted", "key", what, "addr", strings.Join(list, ","))
	return deleted, nil
}

// describe names a binding's client for messages.
func describe(b *binding) string {
	if b.clientID != "" {
		return "client id " + colonHex(b.clientID)
	}
	return "MAC " + colonHex(b.mac)
}
