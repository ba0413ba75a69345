package firewall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// dialMonitor opens the socket Watch listens on, in the calling thread's
// network namespace. It joins no group until Watch runs, so an unwatched
// Firewall queues nothing on it.
func dialMonitor() (*netlink.Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("opening a netfilter netlink socket: %w", err)
	}
	// A flush of a large table is one notification per object.
	if err := bigBuffers(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Watch calls changed whenever someone other than this Firewall changes
// table inet gatewayd: deletes it (`nft delete table`, `nft flush ruleset`
// as Debian's nftables.service does), flushes it, or adds, changes or
// deletes anything in it. The notifications of this Firewall's own batches
// are recognised by their netlink port and ignored. When notifications were
// lost (the socket overran) changed is called too, since the table may
// have changed. The controller answers with Set of the last ruleset, which
// restores the table when it differs and costs nothing when it does not.
//
// changed runs on Watch's goroutine and must not block (hand the news to a
// channel); it may be called several times for one change. Watch returns
// nil when ctx ends, and an error when the socket fails or the Firewall is
// closed. One Watch at a time.
func (f *Firewall) Watch(ctx context.Context, changed func()) error {
	f.mu.Lock()
	mon, sock := f.mon, f.sock
	f.mu.Unlock()
	if mon == nil {
		return errors.New("watching the firewall: the firewall is closed")
	}
	own, err := sock.portID()
	if err != nil {
		return fmt.Errorf("watching the firewall: %w", err)
	}
	if err := mon.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		return fmt.Errorf("watching the firewall: joining the nftables group: %w", err)
	}
	defer func() { _ = mon.LeaveGroup(unix.NFNLGRP_NFTABLES) }()
	stop := context.AfterFunc(ctx, func() { _ = mon.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		msgs, err := mon.Receive()
		switch {
		case ctx.Err() != nil:
			_ = mon.SetReadDeadline(time.Time{})
			return nil
		case errors.Is(err, unix.ENOBUFS):
			f.log.Warn("nftables notifications were lost; checking table inet gatewayd")
			changed()
			continue
		case err != nil:
			return fmt.Errorf("watching the firewall: %w", err)
		}
		if foreignChange(msgs, own) {
			changed()
		}
	}
}

// foreignChange reports whether msgs tell of a change to table inet
// gatewayd that the socket at port own did not make. Every nftables object
// message (table, chain, rule, set, element, object, flowtable) carries its
// table's name as attribute 1.
func foreignChange(msgs []netlink.Message, own uint32) bool {
	for _, m := range msgs {
		typ := uint16(m.Header.Type)
		if m.Header.PID == own || typ>>8 != unix.NFNL_SUBSYS_NFTABLES || typ&0xff == unix.NFT_MSG_NEWGEN {
			continue
		}
		if len(m.Data) < 4 || m.Data[0] != unix.NFPROTO_INET {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return true // undecodable: assume the worst
		}
		for ad.Next() {
			if ad.Type() == unix.NFTA_TABLE_NAME && ad.String() == Table {
				return true
			}
		}
	}
	return false
}
