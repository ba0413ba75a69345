package aliases

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Watch timings.
const (
	settle        = 20 * time.Millisecond // coalesce a burst of events into one re-list
	resync        = 30 * time.Second      // re-list even without events, in case some were lost
	repairWindow  = time.Minute           // the rate limit: at most repairBurst puts-back
	repairBurst   = 5                     // of one address per repairWindow
	resubscribeLo = 100 * time.Millisecond
	resubscribeHi = 5 * time.Second
)

// Watch keeps the aliases of the last Set on the NIC until ctx is done: an
// owned alias someone removes is put back (at most repairBurst times per
// address per repairWindow, then it backs off), and when the NIC comes up
// again, or is recreated, its aliases are restored and announced. It returns
// nil when ctx is done or the NIC is closed, or an error if it cannot
// subscribe at all. It subscribes, and sets promote_secondaries on a
// recreated NIC, on the calling goroutine: call it from the NIC's network
// namespace (the daemon's own; a test's lab.Namespace.Do).
func (n *NIC) Watch(ctx context.Context) error {
	w := &watcher{n: n, limit: map[netip.Prefix][]time.Time{}}
	first := true
	backoff := resubscribeLo
	for {
		sub, err := n.subscribe()
		if err != nil {
			if first {
				return fmt.Errorf("watching %s: %w", n.ifname, err)
			}
			n.log.Warn("resubscribing to netlink failed", "err", err, "retry", backoff)
			if !n.pause(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, resubscribeHi)
			continue
		}
		first = false
		n.subs.Add(1)
		// Events may have been lost before (re)subscribing: look now.
		w.announceAll = true
		link, err := n.link()
		w.gone = errors.Is(err, ErrNoLink)
		if err == nil {
			w.up = isUp(link.Attrs())
		}
		start := time.Now()
		w.run(ctx, sub)
		sub.close()
		if ctx.Err() != nil || n.bgCtx.Err() != nil {
			return nil
		}
		// The channel closes when the socket overflows (ENOBUFS) during
		// an event storm; do not spin through subscriptions while it lasts.
		if time.Since(start) > resubscribeHi {
			backoff = resubscribeLo
		}
		n.log.Warn("netlink subscription closed (events lost?); resubscribing", "after", backoff)
		if !n.pause(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, resubscribeHi)
	}
}

// pause waits d; false means ctx is done or the NIC closed meanwhile.
func (n *NIC) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-n.bgCtx.Done():
		return false
	case <-t.C:
		return true
	}
}

type subscription struct {
	addrs chan netlink.AddrUpdate
	links chan netlink.LinkUpdate
	done  chan struct{}
}

func (n *NIC) subscribe() (*subscription, error) {
	s := &subscription{
		addrs: make(chan netlink.AddrUpdate, 64),
		links: make(chan netlink.LinkUpdate, 16),
		done:  make(chan struct{}),
	}
	onErr := func(err error) { n.log.Debug("netlink subscription", "err", err) }
	// The sockets are made here, in the caller's namespace, and stay there;
	// the library's reader goroutines may then run anywhere.
	addrErr := netlink.AddrSubscribeWithOptions(s.addrs, s.done, netlink.AddrSubscribeOptions{ErrorCallback: onErr})
	var linkErr error
	if addrErr == nil {
		linkErr = netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{ErrorCallback: onErr})
	}
	switch {
	case addrErr != nil:
		close(s.done)
		return nil, fmt.Errorf("subscribing to address changes: %w", addrErr)
	case linkErr != nil:
		s.links = nil
		s.close()
		return nil, fmt.Errorf("subscribing to link changes: %w", linkErr)
	}
	return s, nil
}

// close ends the subscription and drains the channels so the library's
// goroutines can finish.
func (s *subscription) close() {
	close(s.done)
	go func() {
		for range s.addrs {
		}
	}()
	if s.links != nil {
		go func() {
			for range s.links {
			}
		}()
	}
}

type watcher struct {
	n           *NIC
	up          bool // the NIC was up (and running) at the last link event
	gone        bool // the NIC was deleted: nothing to repair until it is back
	fresh       bool // the NIC appeared (again) since the last repair: adds complete a Set, not fight someone
	announceAll bool // announce every owned alias after the next repair
	limit       map[netip.Prefix][]time.Time
	backingOff  map[netip.Prefix]bool
}

// run handles events until ctx is done or a channel closes.
func (w *watcher) run(ctx context.Context, sub *subscription) {
	n := w.n
	timer := time.NewTimer(0) // repair once right away
	defer timer.Stop()
	due := time.Now()
	// kick schedules a repair settle from now unless one is due sooner: a
	// steady stream of events must not postpone it for ever.
	kick := func() {
		if at := time.Now().Add(settle); at.Before(due) {
			due = at
			timer.Reset(settle)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.bgCtx.Done():
			return
		case u, ok := <-sub.addrs:
			if !ok {
				return
			}
			if u.LinkIndex == int(n.index.Load()) && u.LinkAddress.IP.To4() != nil {
				kick()
			}
		case u, ok := <-sub.links:
			if !ok {
				return
			}
			if w.linkEvent(u) {
				kick()
			}
		case <-timer.C:
			next := w.repair(ctx)
			due = time.Now().Add(next)
			timer.Reset(next)
		}
	}
}

// linkEvent notes what happened to the NIC and reports whether to repair.
func (w *watcher) linkEvent(u netlink.LinkUpdate) bool {
	n := w.n
	attrs := u.Link.Attrs()
	if attrs.Name != n.ifname {
		return false
	}
	if u.Header.Type == unix.RTM_DELLINK {
		n.log.Warn("interface removed; waiting for it to come back")
		w.up, w.gone = false, true
		return false
	}
	w.gone = false
	// The repair this triggers makes the new NIC ready (ready: the packet
	// socket bound to it, promote_secondaries set) before its first change.
	if old := n.index.Load(); int(old) != attrs.Index {
		if old == 0 {
			n.log.Info("interface appeared; adding its aliases", "index", attrs.Index)
		} else {
			n.log.Warn("interface reappeared with a new index; restoring its aliases", "old", old, "new", attrs.Index)
		}
		n.index.Store(int32(attrs.Index))
		w.fresh = true
	}
	up := isUp(attrs)
	if up && !w.up {
		n.log.Info("interface is up; restoring and announcing its aliases")
		w.announceAll = true
	}
	w.up = up
	return true
}

// repair puts back what is missing and returns when to look again.
func (w *watcher) repair(ctx context.Context) time.Duration {
	n := w.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.desired == nil || n.closed || w.gone || ctx.Err() != nil {
		return resync
	}
	now := n.now()
	wait := resync
	// Adding every alias to a NIC that just appeared is not a fight with
	// someone removing them: it spends no budget.
	allow := func(s Step) bool {
		ok, retry := w.allow(s.Alias.Prefix, now)
		if !ok {
			wait = min(wait, retry)
		}
		return ok
	}
	fresh := w.fresh
	if fresh {
		allow = nil
	}
	res, err := n.reconcile(ctx, allow, true)
	n.deferred.Add(uint64(len(res.Deferred)))
	for _, s := range res.Done {
		if fresh {
			n.log.Info("alias added to the interface that appeared", "alias", s.Alias.Name, "addr", s.Alias.Prefix, "step", s.String())
		} else {
			n.restores.Add(1)
			n.restored.Store(now.UnixNano())
			n.log.Warn("put back an alias removed by someone else", "alias", s.Alias.Name, "addr", s.Alias.Prefix, "step", s.String())
		}
	}
	if err == nil && res.Pending == nil {
		w.fresh = false
	}
	if err != nil {
		n.log.Error("restoring aliases", "err", err)
		wait = min(wait, time.Second)
	}
	if w.announceAll && err == nil {
		w.announceAll = false
		w.announceOwned(res)
	}
	n.repairs.Add(1)
	return wait
}

// announceOwned announces every owned desired alias not just added (those
// were announced when added).
func (w *watcher) announceOwned(res Result) {
	n := w.n
	link, kernel, err := n.kernelAddrs()
	if err != nil {
		n.log.Warn("announcing aliases", "err", err)
		return
	}
	done := map[netip.Prefix]bool{}
	for _, s := range res.Done {
		done[s.Alias.Prefix] = true
	}
	var addrs []netip.Addr
	for _, k := range kernel {
		if _, ok := n.owned(k.Prefix); ok && !done[k.Prefix] {
			addrs = append(addrs, k.Prefix.Addr())
		}
	}
	if err := n.burst(link, addrs...); err != nil {
		n.log.Warn("gratuitous ARP failed", "err", err)
	}
}

// allow applies the rate limit to putting p back, and says when to retry
// if it refuses. Each call that returns true spends one put-back of p's
// budget: reconcile asks once per step (admit).
func (w *watcher) allow(p netip.Prefix, now time.Time) (bool, time.Duration) {
	times := w.limit[p]
	for len(times) > 0 && now.Sub(times[0]) >= repairWindow {
		times = times[1:]
	}
	if len(times) >= repairBurst {
		w.limit[p] = times
		if w.backingOff == nil {
			w.backingOff = map[netip.Prefix]bool{}
		}
		if !w.backingOff[p] {
			w.backingOff[p] = true
			w.n.log.Error("alias keeps being removed by someone else; backing off", "addr", p, "puts_back", len(times), "window", repairWindow)
		}
		return false, repairWindow - now.Sub(times[0])
	}
	delete(w.backingOff, p)
	w.limit[p] = append(times, now)
	return true, 0
}

// isUp reports whether the NIC can carry frames: up and with a carrier.
func isUp(attrs *netlink.LinkAttrs) bool {
	return attrs.Flags&net.FlagUp != 0 && attrs.RawFlags&unix.IFF_RUNNING != 0
}
