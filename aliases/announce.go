package aliases

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// arpConn is an AF_PACKET socket for ARP frames on one interface.
type arpConn struct {
	f   *os.File
	mac net.HardwareAddr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openARP opens the socket inside the NIC's namespace. Its reads and
// writes honour deadlines.
func (n *NIC) openARP(link netlink.Link) (*arpConn, error) {
	attrs := link.Attrs()
	if len(attrs.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address (%q): ARP needs one", n.ifname, attrs.HardwareAddr)
	}
	var fd int
	err := inNS(n.ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return err
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: attrs.Index}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("opening an ARP socket on %s: %w", n.ifname, err)
	}
	return &arpConn{f: os.NewFile(uintptr(fd), "arp:"+n.ifname), mac: attrs.HardwareAddr}, nil
}

func (c *arpConn) send(p arpPacket) error {
	b, err := p.marshal()
	if err != nil {
		return err
	}
	// A bound packet socket sends out of the interface it is bound to.
	_, err = c.f.Write(b)
	return err
}

func (c *arpConn) Close() error { return c.f.Close() }

// Announce sends a gratuitous ARP burst for each address, which must all be
// on the NIC: the first frames now (their errors are returned), the rest in
// the background.
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
	// One socket for the whole burst: opening one per address costs a thread
	// switched into the namespace each time, seconds for hundreds of aliases.
	c, err := n.openARP(link)
	if err != nil {
		return err
	}
	frames := make([]arpPacket, len(addrs))
	var errs []error
	for i, a := range addrs {
		frames[i] = announcement(c.mac, a)
		if err := c.send(frames[i]); err != nil {
			errs = append(errs, fmt.Errorf("announcing %s on %s: %w", a, n.ifname, err))
		}
	}
	n.bgMu.Lock()
	defer n.bgMu.Unlock()
	if n.bgClosed || count <= 1 {
		return errors.Join(append(errs, c.Close())...)
	}
	started := time.Now()
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		defer c.Close()
		t := time.NewTicker(interval)
		defer t.Stop()
		for range count - 1 {
			select {
			case <-n.bgCtx.Done():
				return
			case <-t.C:
			}
			for i, p := range frames {
				// An address released meanwhile must not be announced: the
				// host claiming it would take the frame for a holder.
				if n.removedSince(addrs[i], started) {
					continue
				}
				if err := c.send(p); err != nil {
					n.log.Debug("gratuitous ARP failed", "addr", addrs[i], "err", err)
				}
			}
		}
	}()
	return errors.Join(errs...)
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
// holding a itself does not count.
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
	c, err := n.openARP(link)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	const probes = 3
	start := time.Now()
	end := start.Add(timeout)
	buf := make([]byte, 1500)
	for sent := 0; ; {
		if sent < probes {
			if err := c.send(probe(c.mac, a)); err != nil {
				return nil, fmt.Errorf("probing %s on %s: %w", a, n.ifname, err)
			}
			sent++
		}
		next := end
		if sent < probes {
			next = start.Add(timeout * time.Duration(sent) / probes)
		}
		c.f.SetReadDeadline(next)
		if err := ctx.Err(); err != nil { // AfterFunc may have fired before the line above
			return nil, fmt.Errorf("probing %s on %s: %w", a, n.ifname, err)
		}
		for {
			nr, err := c.f.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("probing %s on %s: %w", a, n.ifname, err)
			}
			if p, err := parseARP(buf[:nr]); err == nil && p.holds(a, c.mac) {
				n.log.Info("address is held by another host", "addr", a, "mac", p.SenderMAC.String())
				return p.SenderMAC, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("probing %s on %s: %w", a, n.ifname, err)
		}
		if !time.Now().Before(end) {
			return nil, nil
		}
	}
}
