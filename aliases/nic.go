package aliases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"gatewayd/ether"
)

// Announce says how new addresses are announced with gratuitous ARP.
type Announce struct {
	Count    int           // frames per burst; 0 means 3, negative means none
	Interval time.Duration // between frames; default 1s (RFC 5227 uses 2s)
}

// withDefaults fills zero fields: 3 frames 1 s apart.
func (a Announce) withDefaults() Announce {
	if a.Count == 0 {
		a.Count = 3
	}
	if a.Interval <= 0 {
		a.Interval = time.Second
	}
	return a
}

// Options configure Open.
type Options struct {
	Interface string       // the NIC
	StateDir  string       // where aliases.json, the record of owned addresses, lives; must exist (statedir.Lock creates it)
	Logger    *slog.Logger // nil: discard
	Announce  Announce
}

// NIC holds gatewayd's alias addresses on one interface.
//
// Open opens the NIC's netlink handles and its packet socket in the network
// namespace of the calling goroutine, and keeps them for the NIC's life, so
// its other methods may be called from any goroutine. Watch opens netlink
// subscriptions (again, when one overflows) on the goroutine that calls it,
// which must be in the same namespace.
type NIC struct {
	ifname   string
	hmu      sync.RWMutex     // guards h and conf against Close
	h        *netlink.Handle  // nil after Close
	conf     *nl.SocketHandle // the NIC's IPv4 devconf (promote_secondaries)
	arp      *ether.Conn      // bound when the NIC is first seen, again when it is re-created
	log      *slog.Logger
	announce Announce
	now      func() time.Time // the Watch budget's clock
	writes   atomic.Uint64    // netlink writes attempted, for tests and metrics
	deferred atomic.Uint64    // puts-back the Watch budget put off, for tests and metrics
	restores atomic.Uint64    // aliases Watch put back after someone else removed them
	restored atomic.Int64     // when Watch last put one back (Unix ns)
	removed  sync.Map         // netip.Addr → time.Time it was last taken off the NIC
	index    atomic.Int32     // the NIC's ifindex when last seen
	promoted atomic.Int32     // the ifindex promote_secondaries was last made sure of
	subs     atomic.Int32     // netlink subscriptions Watch has made, for tests
	repairs  atomic.Uint64    // repair cycles Watch has finished, for tests

	mu  sync.Mutex // serialises reconciles and guards what follows
	rec *record
	// recDirty: rec has changes not yet written (a reconcile writes once).
	recDirty bool
	desired  []Alias // nil until the first Set, and after Purge
	closed   bool

	bgMu     sync.Mutex // guards bgClosed and bg.Add against Close
	bgClosed bool
	bg       sync.WaitGroup // background announcement bursts
	bgCtx    context.Context
	bgStop   context.CancelFunc
}

// Open opens the NIC's netlink handles and packet socket, loads the record
// of owned addresses and, if the NIC is there, sets promote_secondaries on
// it and binds the packet socket to it, all in the network namespace of
// the calling goroutine. A NIC that does not exist (yet) is not an error:
// Set then says what waits for it, and the first call that sees it appear
// (Watch's, usually) makes it ready and completes the set.
func Open(opts Options) (_ *NIC, err error) {
	if opts.Interface == "" || len(opts.Interface) > maxLabel || strings.ContainsAny(opts.Interface, "/ \x00") {
		return nil, fmt.Errorf("interface name %q is not a valid interface name", opts.Interface)
	}
	if opts.StateDir == "" {
		return nil, errors.New("aliases: no state directory given for the record of owned addresses")
	}
	n := &NIC{ifname: opts.Interface, announce: opts.Announce, log: opts.Logger, now: time.Now}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("component", "aliases", "interface", n.ifname)
	n.announce = n.announce.withDefaults()
	defer func() {
		if err != nil {
			n.closeHandles()
		}
	}()
	if n.h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	if n.conf, err = openConf(); err != nil {
		return nil, err
	}
	if n.arp, err = ether.OpenUnbound(); err != nil {
		return nil, fmt.Errorf("opening an ARP socket for %s: %w", n.ifname, err)
	}
	if n.rec, err = loadRecord(opts.StateDir); err != nil {
		return nil, err
	}
	link, err := n.link()
	switch {
	case errors.Is(err, ErrNoLink):
		n.log.Warn("interface absent; its aliases are added when it appears", "reason", err)
	case err != nil:
		return nil, err
	default:
		if err := n.ready(link); err != nil {
			return nil, err
		}
	}
	n.bgCtx, n.bgStop = context.WithCancel(context.Background())
	n.log.Debug("opened", "owned", len(n.rec.on(n.ifname)))
	return n, nil
}

// ready makes the NIC fit for changes the first time each incarnation of it
// (each ifindex) is seen: promote_secondaries set, the packet socket bound
// to it. Whoever sees it first does it, from any goroutine: both go through
// sockets made in the NIC's namespace at Open.
func (n *NIC) ready(link netlink.Link) error {
	idx := link.Attrs().Index
	if n.promoted.Load() != int32(idx) {
		if err := n.ensurePromote(idx); err != nil {
			return err
		}
		n.promoted.Store(int32(idx))
	}
	_, err := n.arpOn(link)
	return err
}

// closeHandles closes the netlink handle and the packet socket.
func (n *NIC) closeHandles() {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	if n.h != nil {
		n.h.Close()
		n.h = nil
	}
	if n.conf != nil {
		n.conf.Close()
		n.conf = nil
	}
	if n.arp != nil {
		n.arp.Close()
	}
}

// withHandle runs fn with the NIC's handle, or returns errClosed after Close:
// a closed handle would make the library open a socket per call, in the
// namespace of whatever thread runs it.
func (n *NIC) withHandle(fn func(h *netlink.Handle) error) error {
	n.hmu.RLock()
	defer n.hmu.RUnlock()
	if n.h == nil {
		return errClosed
	}
	return fn(n.h)
}

// Close stops background announcements and Watch, and releases the NIC's
// handles. It leaves every address where it is.
func (n *NIC) Close() error {
	n.bgMu.Lock()
	if n.bgClosed {
		n.bgMu.Unlock()
		return nil
	}
	n.bgClosed = true
	n.bgStop()
	n.bgMu.Unlock()
	n.bg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	n.closeHandles()
	return nil
}

// errClosed is returned by every method of a closed NIC.
var errClosed = errors.New("aliases: the NIC is closed")

// usable returns errClosed after Close. The caller holds n.mu.
func (n *NIC) usable() error {
	if n.closed {
		return errClosed
	}
	return nil
}

// Writes returns how many netlink writes (address adds and deletes) the NIC
// has attempted.
func (n *NIC) Writes() uint64 { return n.writes.Load() }

// Interface returns the NIC's name.
func (n *NIC) Interface() string { return n.ifname }

// owned is the only answer to "did gatewayd add this address to the NIC?".
// Nothing it rejects is ever changed.
func (n *NIC) owned(p netip.Prefix) (Alias, bool) {
	e, ok := n.rec.owns(n.ifname, p)
	return Alias{Name: e.Name, Prefix: e.Prefix, Label: e.Label}, ok
}

// ErrNoLink is wrapped by the errors of the calls that need the NIC while
// it is absent (Adopt, Announce) or, for Probe, absent or down.
var ErrNoLink = errors.New("the interface is absent or down")

// linkError says why the NIC cannot be used now; it is ErrNoLink.
type linkError struct{ msg string }

func (e linkError) Error() string        { return e.msg }
func (e linkError) Is(target error) bool { return target == ErrNoLink }

// link looks the NIC up; a missing one is a linkError listing the others.
func (n *NIC) link() (link netlink.Link, err error) {
	var names []string
	err = n.withHandle(func(h *netlink.Handle) error {
		if link, err = h.LinkByName(n.ifname); err != nil {
			if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
				names = otherLinks(h)
			}
		}
		return err
	})
	switch {
	case err == nil:
		n.index.Store(int32(link.Attrs().Index))
		return link, nil
	case names == nil:
		return nil, fmt.Errorf("looking up interface %s: %w", n.ifname, err)
	case len(names) == 0:
		return nil, linkError{fmt.Sprintf("interface %s does not exist, and there is no other interface to use", n.ifname)}
	}
	return nil, linkError{fmt.Sprintf("interface %s does not exist; set [gateway] interface to one of: %s",
		n.ifname, strings.Join(names, ", "))}
}

// otherLinks lists the names of the interfaces that are not loopback,
// sorted, never nil.
func otherLinks(h *netlink.Handle) []string {
	names := []string{}
	if links, err := h.LinkList(); err == nil {
		for _, l := range links {
			if l.Attrs().Flags&net.FlagLoopback == 0 {
				names = append(names, l.Attrs().Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// kernelAddrs lists the NIC's IPv4 addresses.
func (n *NIC) kernelAddrs() (netlink.Link, []kernelAddr, error) {
	link, err := n.link()
	if err != nil {
		return nil, nil, err
	}
	var addrs []netlink.Addr
	// A dump racing with changes is interrupted; never act on a partial one.
	for try := 1; ; try++ {
		err = n.withHandle(func(h *netlink.Handle) (err error) {
			addrs, err = h.AddrList(link, netlink.FAMILY_V4)
			return err
		})
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 5 {
			break
		}
		time.Sleep(time.Duration(try) * 5 * time.Millisecond)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing the addresses of %s: %w", n.ifname, err)
	}
	out := make([]kernelAddr, 0, len(addrs))
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		label := a.Label
		if label == "" {
			label = n.ifname
		}
		out = append(out, kernelAddr{Prefix: netip.PrefixFrom(ip, bits), Label: label,
			Primary: a.Flags&unix.IFA_F_SECONDARY == 0})
	}
	return link, out, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (n *NIC) addrAdd(link netlink.Link, a Alias) error {
	n.writes.Add(1)
	return n.withHandle(func(h *netlink.Handle) error {
		return h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(a.Prefix), Label: a.Label})
	})
}

// addrDel deletes p only while it still carries label, so an address
// relabelled by someone in the meantime is not taken away.
func (n *NIC) addrDel(link netlink.Link, p netip.Prefix, label string) error {
	n.noteRemoved(p.Addr())
	n.writes.Add(1)
	return n.withHandle(func(h *netlink.Handle) error {
		return h.AddrDel(link, &netlink.Addr{IPNet: ipNet(p), Label: label})
	})
}
