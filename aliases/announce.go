package aliases

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"gatewayd/ether"
)

// arpOn returns the NIC's packet socket bound to link, binding it anew
// when the NIC was re-created (a new index) or took another MAC address.
// Binding opens no socket, so any goroutine may do it.
func (n *NIC) arpOn(link netlink.Link) (*ether.Conn, error) {
	attrs := link.Attrs()
	if n.arp.Index() != attrs.Index || !bytes.Equal(n.arp.HardwareAddr(), attrs.HardwareAddr) {
		if err := n.arp.Rebind(attrs.Index); err != nil {
			return nil, fmt.Errorf("ARP on %s: %w", n.ifname, err)
		}
		n.log.Debug("ARP socket bound anew", "index", attrs.Index, "mac", attrs.HardwareAddr.String())
	}
	return n.arp, nil
}

// SetAnnounce changes how later additions are announced.
func (n *NIC) SetAnnounce(a Announce) {
	n.bgMu.Lock()
	defer n.bgMu.Unlock()
	n.announce = a.withDefaults()
}

// Announce sends a gratuitous ARP burst for each address, which must all be
// on the NIC: the first frames now (their errors are returned), the rest in
// the background. While the NIC is down it sends nothing and returns nil:
// Watch announces every alias when the NIC comes up.
func (n *NIC) Announce(addrs ...netip.Addr) error {
	if n.bgCtx.Err() != nil {
		return errClosed
	}
	link, kernel, err := n.kernelAddrs()
	if err != nil {
		return fmt.Errorf("announcing on %s: %w", n.ifname, err)
	}
	on := map[netip.Addr]bool{}
	for _, k := range kernel {
		on[k.Prefix.Addr()] = true
	}
	for _, a := range addrs {
		if !a.Is4() {
			return fmt.Errorf("announcing %s on %s: not an IPv4 address", a, n.ifname)
		}
		if !on[a] {
			// Announcing an address this host does not hold would steal it.
			return fmt.Errorf("announcing %s on %s: the address is not on the interface", a, n.ifname)
		}
	}
	return n.burst(link, addrs...)
}

func (n *NIC) burst(link netlink.Link, addrs ...netip.Addr) error {
	n.bgMu.Lock()
	count, interval := n.announce.Count, n.announce.Interval
	n.bgMu.Unlock()
	if len(addrs) == 0 || count < 0 {
		return nil
	}
	if !isUp(link.Attrs()) {
		// Nothing would go out (ENETDOWN); Watch announces on up.
		n.log.Debug("interface down; announcing when it comes up", "addrs", len(addrs))
		return nil
	}
	c, err := n.arpOn(link)
	if err != nil {
		return err
	}
	if err = c.Announce(addrs...); err != nil {
		err = fmt.Errorf("gratuitous ARP on %s: %w", n.ifname, err)
	}
	n.bgMu.Lock()
	defer n.bgMu.Unlock()
	if n.bgClosed || count <= 1 {
		return err
	}
	started := time.Now()
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for range count - 1 {
			select {
			case <-n.bgCtx.Done():
				return
			case <-t.C:
			}
			// An address released meanwhile must not be announced: the
			// host claiming it would take the frame for a holder.
			held := slices.DeleteFunc(slices.Clone(addrs), func(a netip.Addr) bool { return n.removedSince(a, started) })
			if err := c.Announce(held...); err != nil {
				n.log.Debug("gratuitous ARP failed", "err", err)
			}
		}
	}()
	return err
}

// noteRemoved records that a was taken off the NIC, for bursts in flight.
func (n *NIC) noteRemoved(a netip.Addr) { n.removed.Store(a, time.Now()) }

// removedSince reports whether a was taken off the NIC after t.
func (n *NIC) removedSince(a netip.Addr, t time.Time) bool {
	v, ok := n.removed.Load(a)
	return ok && v.(time.Time).After(t)
}

// Probe asks (RFC 5227 ARP Probe, sender IP 0.0.0.0) whether another host
// holds a. It returns the holder's MAC address, or nil if nobody answered
// within timeout. Up to three probes are spread over the timeout; RFC 5227
// spaces them 1-2 s apart, so a timeout of 3 s or more follows it. This host
// holding a itself does not count. What counts as held is
// [ether.ARP.Conflicts]. While the NIC is absent or down nobody can be
// asked: the error is then [ErrNoLink], at once.
func (n *NIC) Probe(ctx context.Context, a netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	if !a.Is4() || a.IsUnspecified() {
		return nil, fmt.Errorf("probing %s on %s: not a usable IPv4 address", a, n.ifname)
	}
	if n.bgCtx.Err() != nil {
		return nil, errClosed
	}
	link, err := n.link()
	if err != nil {
		return nil, fmt.Errorf("probing %s: %w", a, err)
	}
	if !isUp(link.Attrs()) {
		return nil, fmt.Errorf("probing %s: %w", a, linkError{fmt.Sprintf("interface %s is down (or has no carrier), so nobody can answer", n.ifname)})
	}
	c, err := n.arpOn(link)
	if err != nil {
		return nil, fmt.Errorf("probing %s: %w", a, err)
	}
	holder, err := c.Probe(ctx, a, timeout)
	if err != nil {
		return nil, fmt.Errorf("probing on %s: %w", n.ifname, err)
	}
	if holder != nil {
		n.log.Info("address is held by another host", "addr", a, "mac", holder.String())
	}
	return holder, nil
}
