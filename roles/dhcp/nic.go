package dhcp

import (
	"errors"
	"fmt"
)

// The NIC comes and goes: deleted and created again, it gets a new index,
// and sockets bound to the old one (SO_BINDTOIFINDEX, the packet socket)
// stay deaf for good. The controller calls Set once a second and on every
// link event; with an unchanged Config, Set asks the UDP socket for the
// NIC's index (one ioctl) and re-opens the sockets when it changed. While
// the NIC is absent the role holds its Config, its leases and its names,
// and waits (Status().Waiting).

// connFor returns the sockets that serve want: old when they still serve
// its NIC, new ones otherwise; none, with the reason, when the NIC does not
// exist and the role may wait for it (it is starting, or it serves that
// NIC already). A running role is not moved to a NIC that does not exist.
func (s *Server) connFor(want, cur *Config, old *conn) (*conn, string, error) {
	if old != nil && old.ifname == want.Interface {
		if ok, err := old.current(); err == nil && ok {
			if want.ProbeBeforeOffer && old.eth == nil {
				return nil, "", fmt.Errorf("probe_before_offer: %w", old.ethErr)
			}
			return old, "", nil
		}
	}
	nc, err := listen(want.Interface)
	if errors.Is(err, errNoNIC) && (cur == nil || cur.Interface == want.Interface) {
		return nil, fmt.Sprintf("waiting for interface %s: it does not exist", want.Interface), nil
	}
	if err != nil {
		return nil, "", err
	}
	if nc.ethErr != nil {
		s.log.Warn("no packet socket: replies to clients without an address are broadcast", "iface", want.Interface, "err", nc.ethErr)
	}
	if want.ProbeBeforeOffer && nc.eth == nil {
		nc.close()
		return nil, "", fmt.Errorf("probe_before_offer: %w", nc.ethErr)
	}
	return nc, "", nil
}

// followNIC is Set with the Config that runs: nothing when the sockets
// still serve the NIC, else re-open them (or wait for the NIC). When new
// sockets cannot be opened, the old ones, if any, stay (Set's "on error
// the previous state keeps running").
func (s *Server) followNIC(cur *Config, old *conn) error {
	if old != nil {
		if ok, err := old.current(); err == nil && ok {
			return nil
		}
	}
	nc, waiting, err := s.connFor(cur, cur, old)
	if err != nil {
		if old != nil {
			// The NIC may be there still (the lookup itself failed): the
			// sockets that serve keep serving, and the next Set tries again.
			return err
		}
		waiting = err.Error()
	}
	if nc != nil {
		s.reopens.Add(1)
	}
	s.mu.Lock()
	s.useConn(nc, waiting)
	s.mu.Unlock()
	return err
}

// Reopens counts the times a Set with the running config opened the
// sockets again because the NIC was re-created or appeared: the role's
// restores, for the daemon's drift loop.
func (s *Server) Reopens() uint64 { return s.reopens.Load() }

// useConn makes cn the role's sockets (nil: none, for the reason in
// waiting), starts its read loop and closes the previous ones, logging
// each change of state once. Called with s.mu held.
func (s *Server) useConn(cn *conn, waiting string) {
	old, wasWaiting := s.conn, s.waiting
	s.conn, s.waiting = cn, waiting
	if cn == old {
		return
	}
	if old != nil {
		old.close()
	}
	switch {
	case cn == nil && waiting != wasWaiting:
		s.log.Warn("not serving: "+waiting, "iface", s.cur.Interface)
	case cn != nil && old != nil && old.ifname == cn.ifname:
		s.log.Info("the NIC was created again: sockets re-opened on its new index", "iface", cn.ifname, "index", cn.ifindex)
	case cn != nil && wasWaiting != "":
		s.log.Info("the NIC is there: serving", "iface", cn.ifname, "index", cn.ifindex)
	}
	if cn != nil {
		s.spawn(func() { s.serve(cn) })
	}
}
