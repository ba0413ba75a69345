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
	"github.com/vishvananda/netns"
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
	Interface string          // the NIC
	StateDir  string          // where aliases.json, the record of owned addresses, lives
	Handle    *netlink.Handle // nil: a handle in the caller's network namespace
	Logger    *slog.Logger    // nil: discard
	Announce  Announce
}

// NIC holds gatewayd's alias addresses on one interface.
//
// Open must be called from the network namespace the NIC lives in (and
// Options.Handle, if set, must point there too); NIC remembers that
// namespace, so its other methods may be called from any goroutine.
type NIC struct {
	ifname    string
	ns        netns.NsHandle
	h         *netlink.Handle
	ownHandle bool
	log       *slog.Logger
	announce  Announce
	writes    atomic.Uint64 // netlink writes attempted, for tests and metrics
	removed   sync.Map      // netip.Addr → time.Time it was last taken off the NIC
	index     atomic.Int32  // the NIC's ifindex when last seen
	subs      atomic.Int32  // netlink subscriptions Watch has made, for tests

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

// Open checks that the NIC exists, loads the record of owned addresses and
// sets promote_secondaries on the NIC.
func Open(opts Options) (_ *NIC, err error) {
	if opts.Interface == "" || len(opts.Interface) > maxLabel || strings.ContainsAny(opts.Interface, "/ \x00") {
		return nil, fmt.Errorf("interface name %q is not a valid interface name", opts.Interface)
	}
	if opts.StateDir == "" {
		return nil, errors.New("aliases: no state directory given for the record of owned addresses")
	}
	n := &NIC{ifname: opts.Interface, h: opts.Handle, announce: opts.Announce, log: opts.Logger}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("component", "aliases", "interface", n.ifname)
	n.announce = n.announce.withDefaults()
	if n.ns, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("finding the current network namespace: %w", err)
	}
	defer func() {
		if err != nil {
			n.closeHandles()
		}
	}()
	if n.h == nil {
		if n.h, err = newHandle(n.ns); err != nil {
			return nil, fmt.Errorf("opening netlink: %w", err)
		}
		n.ownHandle = true
	}
	link, err := n.link()
	if err != nil {
		return nil, err
	}
	if !n.ownHandle {
		if err := sameNamespace(n.ns, link); err != nil {
			return nil, err
		}
	}
	if n.rec, err = loadRecord(opts.StateDir); err != nil {
		return nil, err
	}
	if err := setPromoteSecondaries(n.ns, n.ifname); err != nil {
		return nil, err
	}
	n.bgCtx, n.bgStop = context.WithCancel(context.Background())
	n.log.Debug("opened", "owned", len(n.rec.on(n.ifname)))
	return n, nil
}

// sameNamespace refuses a Handle that points to another namespace than the
// caller's: the sysctl and the ARP sockets would then act on the wrong
// interface, possibly the host's own.
func sameNamespace(ns netns.NsHandle, link netlink.Link) error {
	h, err := newHandle(ns)
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	defer h.Close()
	here, err := h.LinkByName(link.Attrs().Name)
	if err != nil || here.Attrs().Index != link.Attrs().Index ||
		here.Attrs().HardwareAddr.String() != link.Attrs().HardwareAddr.String() {
		return fmt.Errorf("interface %s: Options.Handle is not in the caller's network namespace; call Open from inside it", link.Attrs().Name)
	}
	return nil
}

func (n *NIC) closeHandles() {
	if n.ownHandle && n.h != nil {
		n.h.Close()
	}
	if n.ns.IsOpen() {
		n.ns.Close()
	}
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

// link looks the NIC up; a missing one gets an error listing the others.
func (n *NIC) link() (netlink.Link, error) {
	link, err := n.h.LinkByName(n.ifname)
	if err == nil {
		n.index.Store(int32(link.Attrs().Index))
		return link, nil
	}
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); !ok {
		return nil, fmt.Errorf("looking up interface %s: %w", n.ifname, err)
	}
	var names []string
	if links, lerr := n.h.LinkList(); lerr == nil {
		for _, l := range links {
			if l.Attrs().Flags&net.FlagLoopback == 0 {
				names = append(names, l.Attrs().Name)
			}
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("interface %s does not exist, and there is no other interface to use", n.ifname)
	}
	return nil, fmt.Errorf("interface %s does not exist; set [gateway] interface to one of: %s",
		n.ifname, strings.Join(names, ", "))
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
		addrs, err = n.h.AddrList(link, netlink.FAMILY_V4)
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
		out = append(out, kernelAddr{Prefix: netip.PrefixFrom(ip, bits), Label: label})
	}
	return link, out, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (n *NIC) addrAdd(link netlink.Link, a Alias) error {
	n.writes.Add(1)
	return n.h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(a.Prefix), Label: a.Label})
}

// addrDel deletes p only while it still carries label, so an address
// relabelled by someone in the meantime is not taken away.
func (n *NIC) addrDel(link netlink.Link, p netip.Prefix, label string) error {
	n.noteRemoved(p.Addr())
	n.writes.Add(1)
	return n.h.AddrDel(link, &netlink.Addr{IPNet: ipNet(p), Label: label})
}
