package ether

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// probes is how many ARP Probes one Probe sends (RFC 5227 PROBE_NUM).
const probes = 3

// Probe asks whether another host holds ip: it sends three RFC 5227 ARP
// Probes spread over timeout (the first at once) and returns the sender MAC
// of the first packet that conflicts ([ARP.Conflicts]) within timeout, or
// nil if none does. RFC 5227 spaces probes 1-2 s apart, so a timeout of 3 s
// or more follows it; a shorter one trades certainty for speed. This host
// holding ip itself does not count: its own frames never conflict.
func (c *Conn) Probe(ctx context.Context, ip netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	if !ip.Is4() || ip.IsUnspecified() {
		return nil, fmt.Errorf("ARP probe for %s: not a usable IPv4 address", ip)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ARP probe for %s: %w", ip, err)
	}
	// Listen before the first probe: the holder's kernel answers at once.
	w := c.await(ip)
	defer c.forget(w)
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for sent := 0; ; {
		select {
		case p := <-w.ch:
			return p.SenderMAC, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("ARP probe for %s: %w", ip, ctx.Err())
		case <-c.closed:
			return nil, fmt.Errorf("ARP probe for %s: %w", ip, net.ErrClosed)
		case <-t.C:
		}
		if sent == probes {
			return nil, nil
		}
		if err := c.sendARP(ProbePacket, ip); err != nil {
			return nil, fmt.Errorf("ARP probe for %s: %w", ip, err)
		}
		sent++
		t.Reset(time.Until(start.Add(timeout * time.Duration(sent) / probes)))
	}
}

// Announce sends one RFC 5227 ARP Announcement (gratuitous ARP, broadcast)
// for each address, from the interface's MAC address. The caller must hold
// the addresses: announcing one held elsewhere takes its traffic away.
func (c *Conn) Announce(ips ...netip.Addr) error {
	var errs []error
	for _, ip := range ips {
		if !ip.Is4() || ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("ARP announcement of %s: not a usable IPv4 address", ip))
			continue
		}
		if err := c.sendARP(AnnouncementPacket, ip); err != nil {
			errs = append(errs, fmt.Errorf("ARP announcement of %s: %w", ip, err))
		}
	}
	return errors.Join(errs...)
}

// sendARP broadcasts the packet build makes for ip from the interface's MAC.
func (c *Conn) sendARP(build func(net.HardwareAddr, netip.Addr) ARP, ip netip.Addr) error {
	src, err := c.source()
	if err != nil {
		return err
	}
	b, err := arpFrame(src, build(src, ip))
	if err != nil {
		return err
	}
	return c.write(b)
}
