package router

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// setClient starts, stops or re-arms the uplink's DHCP client for u (none
// unless u asks for DHCP). The socket is opened here, on the thread of the
// caller of Set, and again whenever the interface was re-created (a new
// index) or went down and up (the kernel fails the old socket): a Set
// after the link returns brings DHCP back. An interface absent or down
// leaves the client without a socket, which is pending, not an error.
func (r *Router) setClient(u *Uplink, k *kernelState) error {
	want := u != nil && u.DHCP
	if r.client != nil && (!want || r.client.ifname != u.Interface) {
		r.stopClient(true)
	}
	if r.client == nil && r.rec.Lease != nil && (!want || r.rec.Lease.Interface != u.Interface) {
		r.releaseStored(k)
	}
	if !want {
		return nil
	}
	if r.client == nil {
		r.client = startClient(u.Interface, r.storedLease(u.Interface), r.notify, r.log)
	}
	r.client.setHostname(u.Hostname)
	l, ok := k.links[u.Interface]
	switch {
	case !ok:
		r.client.setTransport(nil, "interface "+u.Interface+" is absent")
	case !l.up:
		r.client.setTransport(nil, "interface "+u.Interface+" is down")
	case !r.client.hasTransport(l):
		tr, err := openTransport(u.Interface, l, r.log)
		if err != nil {
			r.client.setTransport(nil, err.Error())
			if absentErr(err) {
				return nil
			}
			return err
		}
		r.client.setTransport(tr, "")
	}
	return nil
}

// stopClient ends the DHCP client; with release the lease is given back and
// forgotten. A release that cannot be sent (the link is down) is only
// logged: the server takes the address back at expiry.
func (r *Router) stopClient(release bool) {
	if err := r.client.stop(release); err != nil {
		r.log.Warn("DHCP lease not released", "err", err)
	}
	r.client = nil
	if release && r.rec.Lease != nil {
		r.rec.Lease = nil
		r.rec.dirty = true
	}
}

// releaseStored gives back and forgets the recorded lease when no client
// holds it: a previous run's, on a purge or a Set(nil) after a restart, or
// when the uplink no longer takes it (no DHCP, another interface). A socket
// is opened on its interface for the one DHCPRELEASE. One that cannot be
// sent (the lease expired, the interface is absent, down or has another
// MAC address) is only logged: the server takes the address back at expiry.
func (r *Router) releaseStored(k *kernelState) {
	ifname := r.rec.Lease.Interface
	l := r.storedLease(ifname)
	r.rec.Lease, r.rec.dirty = nil, true
	if l == nil || !time.Now().Before(l.expires) {
		return
	}
	lk, ok := k.links[ifname]
	var err error
	switch {
	case !ok:
		err = errors.New("interface " + ifname + " is absent")
	case !lk.up:
		err = errors.New("interface " + ifname + " is down")
	case !bytes.Equal(lk.mac, l.mac):
		err = errors.New("interface " + ifname + " has another MAC address")
	default:
		var tr *transport
		if tr, err = openTransport(ifname, lk, r.log); err == nil {
			err = tr.release(l, r.log)
			tr.close()
		}
	}
	if err != nil {
		r.log.Warn("DHCP lease not released", "addr", l.addr, "err", fmt.Errorf("DHCP release on %s: %w", ifname, err))
	}
}

// storedLease is the recorded lease for ifname, if any.
func (r *Router) storedLease(ifname string) *lease {
	if r.rec.Lease == nil || r.rec.Lease.Interface != ifname {
		return nil
	}
	l, err := r.rec.Lease.lease() // loadRecord checked it
	if err != nil {
		return nil
	}
	return l
}

// syncLease puts the client's lease in the record (to be saved with the
// next change), or takes it out when there is none.
func (r *Router) syncLease() {
	var want *storedLease
	if r.client != nil {
		if l := r.client.current(); l != nil {
			want = l.stored()
		}
	}
	if !r.rec.Lease.equal(want) {
		r.rec.Lease = want
		r.rec.dirty = true
	}
}

// notify is the DHCP client's callback: it never blocks.
func (r *Router) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// applyLoop applies each lease change as it happens, not at the next Set.
func (r *Router) applyLoop() {
	defer close(r.loopDone)
	for {
		select {
		case <-r.quit:
			return
		case <-r.wake:
			r.applyLease()
		}
	}
}

// applyLease brings the WAN address and the routes in line with the lease
// the client just got, extended or lost. It runs on the role's own
// goroutine, which may be in another namespace than the caller of Set (in
// tests): so it uses only the netlink handle, opened in Open's namespace, and
// the record, never /proc/sys or a new socket.
func (r *Router) applyLease() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.cur == nil || r.client == nil {
		return
	}
	k, err := r.readKernel(true)
	if err == nil {
		var n int
		n, err = r.reconcileNet(r.cur, k)
		r.writes.Add(uint64(n))
	}
	if err != nil {
		r.log.Error("applying the DHCP lease", "err", err)
	}
	r.leaseErr = err
}
