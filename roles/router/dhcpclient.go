package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// The client's states (RFC 2131 §4.4), as Status shows them.
const (
	stateInit      = "init"        // no lease: DISCOVER
	stateRebooting = "init-reboot" // a lease kept across a restart or a new socket: REQUEST it again
	stateBound     = "bound"
	stateRenewing  = "renewing"  // past T1: REQUEST to the server that gave it
	stateRebinding = "rebinding" // past T2: REQUEST to any server
)

// idle is how long the client sleeps with nothing due; Set kicks it sooner.
const idle = time.Hour

// dhcpClient is the uplink's DHCPv4 client: one goroutine that gets a
// lease, renews it at T1, rebinds at T2, and drops it at expiry or on a NAK.
// It never touches the kernel: it calls changed, and the role applies the
// lease (address and default route) with its own netlink handle. Its socket
// is opened by the role's Set on the caller's thread, in the caller's
// namespace, and replaced by Set when the interface is re-created or the
// socket dies.
type dhcpClient struct {
	ifname  string
	log     *slog.Logger
	changed func() // the lease changed; must not block

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	hostname string
	tr       *transport // nil while the interface is absent or down
	noTr     string     // why tr is nil
	lease    *lease
	hint     netip.Addr // the address to ask for: the last lease's
	state    string
	renewals int    // leases extended (renewed, rebound, confirmed by INIT-REBOOT)
	lastErr  string // the last exchange's failure, "" after a success
	backoff  time.Duration
}

// startClient starts the client on ifname. A stored lease that has not
// expired is confirmed first (INIT-REBOOT), and used meanwhile; an expired
// one only gives the address to ask for.
func startClient(ifname string, stored *lease, changed func(), log *slog.Logger) *dhcpClient {
	ctx, cancel := context.WithCancel(context.Background())
	c := &dhcpClient{
		ifname: ifname, log: log.With("uplink", ifname), changed: changed,
		kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
		state: stateInit, noTr: "no socket yet",
	}
	if stored != nil {
		c.hint = stored.addr.Addr()
		if time.Now().Before(stored.expires) {
			c.lease, c.state = stored, stateRebooting
		}
	}
	go c.run(ctx)
	return c
}

func (c *dhcpClient) run(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		wait := c.step(ctx)
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-c.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// action is what the client has to do next.
type action int

const (
	actWait action = iota
	actDiscover
	actReboot
	actRenew
	actRebind
	actExpire
)

// nextAction is the client's schedule: with lease l (nil: none) at now,
// what is due, or, for actWait, until when nothing is.
func nextAction(l *lease, rebooting bool, now time.Time) (action, time.Time) {
	switch {
	case l == nil:
		return actDiscover, now
	case !now.Before(l.expires):
		return actExpire, now
	case rebooting:
		return actReboot, now
	case now.Before(l.t1):
		return actWait, l.t1
	case now.Before(l.t2):
		return actRenew, now
	default:
		return actRebind, now
	}
}

// retryWait is how long to wait after an unanswered renewal before the next
// one: half the time left until the deadline, at least 60 s (RFC 2131
// §4.4.5), never past the deadline.
func retryWait(now, deadline time.Time) time.Duration {
	left := deadline.Sub(now)
	return max(min(time.Minute, left), left/2)
}

// step does what is due and returns how long to wait before the next step.
func (c *dhcpClient) step(ctx context.Context) time.Duration {
	c.mu.Lock()
	tr, l, st := c.tr, c.lease, c.state
	c.mu.Unlock()
	now := time.Now()
	act, at := nextAction(l, st == stateRebooting, now)
	switch {
	case act == actExpire:
		c.lose("the lease expired")
		return 0
	case act == actWait:
		c.setState(stateBound)
		return at.Sub(now)
	case tr == nil && l != nil:
		return l.expires.Sub(now) // Set kicks when it has a socket again
	case tr == nil:
		return idle
	case act == actDiscover:
		return c.discover(ctx, tr)
	case act == actReboot:
		return c.extend(ctx, tr, l, stateRebooting)
	case act == actRenew:
		return c.extend(ctx, tr, l, stateRenewing)
	default:
		return c.extend(ctx, tr, l, stateRebinding)
	}
}

// modifiers are the options every request carries.
func (c *dhcpClient) modifiers() []dhcpv4.Modifier {
	c.mu.Lock()
	host := c.hostname
	c.mu.Unlock()
	mods := []dhcpv4.Modifier{dhcpv4.WithRequestedOptions(dhcpv4.OptionClasslessStaticRoute)}
	if host != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(host)))
	}
	return mods
}

// discover gets a new lease: DISCOVER (asking for the last address), OFFER,
// REQUEST, ACK.
func (c *dhcpClient) discover(ctx context.Context, tr *transport) time.Duration {
	c.mu.Lock()
	c.state = stateInit
	hint := c.hint
	c.mu.Unlock()
	mods := c.modifiers()
	ask := mods
	if hint.IsValid() {
		ask = append(ask[:len(ask):len(ask)], dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(hint.AsSlice())))
	}
	offer, err := tr.nc.DiscoverOffer(ctx, ask...)
	if err != nil {
		return c.failed(ctx, err)
	}
	got, err := tr.nc.RequestFromOffer(ctx, offer, mods...)
	if err != nil {
		return c.failed(ctx, err)
	}
	return c.bind(ctx, tr, got.ACK, false)
}

// extend asks to keep lease l: confirming it after a restart (broadcast,
// the address as requested), renewing it (to its server) or rebinding it
// (broadcast, the address as ciaddr).
func (c *dhcpClient) extend(ctx context.Context, tr *transport, l *lease, st string) time.Duration {
	c.setState(st)
	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		return c.failed(ctx, err)
	}
	mods := append(c.modifiers(), dhcpv4.WithTransactionID(xid))
	dest, match := nclient4.DefaultServers, nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	var req *dhcpv4.DHCPv4
	switch st {
	case stateRebooting:
		req, err = dhcpv4.New(append([]dhcpv4.Modifier{
			dhcpv4.WithHwAddr(tr.mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(l.addr.Addr().AsSlice())),
			dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer),
		}, mods...)...)
	case stateRenewing:
		dest = &net.UDPAddr{IP: l.server.AsSlice(), Port: nclient4.ServerPort}
		match = nclient4.IsAll(nclient4.IsCorrectServer(l.server.AsSlice()), match)
		req, err = dhcpv4.NewRenewFromAck(l.ack, mods...)
	default:
		req, err = dhcpv4.NewRenewFromAck(l.ack, mods...)
	}
	if err != nil {
		return c.failed(ctx, err)
	}
	resp, err := tr.nc.SendAndRead(ctx, dest, req, match)
	switch {
	case ctx.Err() != nil:
		return 0
	case err != nil && st == stateRebooting:
		// RFC 2131 §3.7: without an answer the unexpired lease is used.
		c.note(err)
		c.setState(stateBound)
		return 0
	case err != nil:
		c.note(err)
		deadline := l.t2
		if st == stateRebinding {
			deadline = l.expires
		}
		return retryWait(time.Now(), deadline)
	case resp.MessageType() == dhcpv4.MessageTypeNak:
		c.lose("the server refused the lease (DHCPNAK)")
		return 0
	}
	return c.bind(ctx, tr, resp, true)
}

// bind takes ack, read on tr, as the lease; what goes to its server from
// now on is unicast to the MAC address the ACK came from.
func (c *dhcpClient) bind(ctx context.Context, tr *transport, ack *dhcpv4.DHCPv4, extended bool) time.Duration {
	l, err := newLease(c.ifname, ack, time.Now())
	if err != nil {
		return c.failed(ctx, err)
	}
	l.serverMAC = tr.serverMAC(ack, l.server)
	tr.unicastVia(l.server, l.serverMAC)
	c.mu.Lock()
	prev := c.lease
	c.lease, c.hint, c.state, c.lastErr, c.backoff = l, l.addr.Addr(), stateBound, "", 0
	if extended {
		c.renewals++
	}
	c.mu.Unlock()
	if prev == nil || prev.addr != l.addr || prev.gateway != l.gateway {
		c.log.Info("DHCP lease bound", "addr", l.addr, "gateway", l.gateway, "server", l.server, "expires", l.expires.Format(time.RFC3339))
	} else {
		c.log.Debug("DHCP lease extended", "addr", l.addr, "expires", l.expires.Format(time.RFC3339))
	}
	c.changed()
	return 0
}

// lose drops the lease: the role removes its address and route.
func (c *dhcpClient) lose(why string) {
	c.mu.Lock()
	had := c.lease != nil
	c.lease, c.state, c.lastErr = nil, stateInit, why
	c.mu.Unlock()
	if had {
		c.log.Warn("DHCP lease lost", "reason", why)
		c.changed()
	}
}

// failed notes a failed exchange and returns the wait before the next
// DISCOVER: 2 s, doubling up to a minute.
func (c *dhcpClient) failed(ctx context.Context, err error) time.Duration {
	if ctx.Err() != nil {
		return 0
	}
	c.note(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backoff = min(max(2*time.Second, 2*c.backoff), time.Minute)
	return c.backoff
}

// note records a failed exchange; the first failure after a success is a
// warning, the repeats are debug lines (Status shows the last one).
func (c *dhcpClient) note(err error) {
	c.mu.Lock()
	first := c.lastErr == ""
	c.lastErr = err.Error()
	st := c.state
	c.mu.Unlock()
	if first {
		c.log.Warn("DHCP exchange failed", "state", st, "err", err)
	} else {
		c.log.Debug("DHCP exchange failed", "state", st, "err", err)
	}
}

func (c *dhcpClient) setState(st string) {
	c.mu.Lock()
	c.state = st
	c.mu.Unlock()
}

func (c *dhcpClient) setHostname(h string) {
	c.mu.Lock()
	c.hostname = h
	c.mu.Unlock()
}

// hasTransport reports whether the client has a usable socket on l.
func (c *dhcpClient) hasTransport(l link) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tr != nil && c.tr.usable(l)
}

// setTransport hands the client its socket (nil, with why, while there can
// be none). A lease given to another MAC address (the NIC was replaced) is
// dropped: the server knows the client by it. Any other lease held when a
// new socket comes (the link went down and up, the NIC was re-created) is
// confirmed at once, INIT-REBOOT (RFC 2131 §3.2): the cable may now be in
// another network, whose server refuses it, and the old address and
// gateway must not stay until T1.
func (c *dhcpClient) setTransport(tr *transport, why string) {
	c.mu.Lock()
	old := c.tr
	c.tr, c.noTr = tr, why
	lost := tr != nil && c.lease != nil && !bytes.Equal(c.lease.mac, tr.mac)
	if tr != nil && tr != old && c.lease != nil && !lost {
		c.state = stateRebooting
		tr.unicastVia(c.lease.server, c.lease.serverMAC)
	}
	c.mu.Unlock()
	if old != nil && old != tr {
		old.close()
	}
	if lost {
		c.lose("the interface has another MAC address")
	}
	if tr != nil {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// stop ends the client; with release it first gives the lease back to the
// server (DHCPRELEASE) when it can. Without release the lease stays valid
// for the next start.
func (c *dhcpClient) stop(release bool) error {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	switch {
	case !release || c.lease == nil:
	case c.tr == nil:
		err = errors.New(c.noTr)
	default:
		err = c.tr.release(c.lease, c.log)
	}
	if release {
		c.lease = nil
	}
	if c.tr != nil {
		c.tr.close()
		c.tr = nil
	}
	if err != nil {
		return fmt.Errorf("DHCP release on %s: %w", c.ifname, err)
	}
	return nil
}

func (c *dhcpClient) current() *lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease
}

// status is the client's part of the uplink's Status.
func (c *dhcpClient) status() *LeaseStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &LeaseStatus{State: c.state, Renewals: c.renewals, Error: c.lastErr}
	if l := c.lease; l != nil {
		s.Server, s.DNS = l.server, append([]netip.Addr(nil), l.dns...)
		s.Acquired, s.Renew, s.Rebind, s.Expires = l.acquired, l.t1, l.t2, l.expires
	}
	return s
}

// pending says what waits for the lease, while there is none.
func (c *dhcpClient) pending() []Pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease != nil {
		return nil
	}
	why := c.noTr
	if c.tr != nil {
		why = "waiting for a DHCP lease"
		if c.lastErr != "" {
			why += " (" + c.lastErr + ")"
		}
	}
	return []Pending{{What: "dhcp lease on " + c.ifname, Reason: why}}
}
