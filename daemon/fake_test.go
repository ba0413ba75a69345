package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"gatewayd/aliases"
	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
)

// fakeOS stands in for the kernel and the roles: every subsystem records, as
// one line of text, each change it would make, so a test compares the whole
// sequence of a transition with what it expects. Like the real subsystems,
// the fakes are idempotent: a Set with what they already hold records
// nothing.
type fakeOS struct {
	mu     sync.Mutex
	calls  []string
	counts map[string]uint64 // successful calls by prefix, for Writes
	// fail makes the named call fail ("dns: start", "firewall: set", ...)
	// as many times as its count says (-1: always).
	fail map[string]int
	// block holds the named call until the channel is closed.
	block map[string]chan struct{}
	// holders are other hosts' MACs for addresses they answer ARP for.
	holders map[netip.Addr]net.HardwareAddr
}

func newFakeOS() *fakeOS {
	return &fakeOS{fail: map[string]int{}, holders: map[netip.Addr]net.HardwareAddr{}, counts: map[string]uint64{}}
}

// record notes a change and returns the error the test asked for, if any.
func (f *fakeOS) record(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	for key, n := range f.fail {
		if n != 0 && strings.HasPrefix(line, key) {
			if n > 0 {
				f.fail[key] = n - 1
			}
			f.calls = append(f.calls, line+" FAILED")
			return fmt.Errorf("%s: injected failure", key)
		}
	}
	f.calls = append(f.calls, line)
	for key, ch := range f.block {
		if strings.HasPrefix(line, key) {
			f.mu.Unlock()
			<-ch
			f.mu.Lock()
		}
	}
	for _, p := range []string{"aliases: ip ", "firewall: set", "router: ", "dns: ", "dhcp: "} {
		if strings.HasPrefix(line, p) {
			f.counts[p]++
		}
	}
	return nil
}

// count is how many calls so far (taken or not) start with prefix.
func (f *fakeOS) count(prefix string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[prefix]
}

// peek returns the calls recorded since the last take, keeping them.
func (f *fakeOS) peek() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "\n")
}

// take returns the calls recorded since the last take. Probes run
// concurrently, so each run of them is sorted.
func (f *fakeOS) take() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls := f.calls
	f.calls = nil
	for i := 0; i < len(calls); {
		j := i
		for j < len(calls) && strings.HasPrefix(calls[j], "aliases: probe ") {
			j++
		}
		slices.Sort(calls[i:j])
		i = max(j, i+1)
	}
	return strings.Join(calls, "\n")
}

func (f *fakeOS) subsystems() Subsystems {
	return Subsystems{
		Aliases:  &fakeNIC{os: f, on: map[netip.Prefix]aliases.Alias{}, foreign: map[netip.Prefix]string{}},
		Firewall: &fakeFirewall{os: f},
		Router:   &fakeRole[router.Config]{os: f, name: "router", describe: func(c *router.Config) string { return c.Interface }},
		DNS:      fakeDNS{&fakeRole[dns.Config]{os: f, name: "dns", describe: func(c *dns.Config) string { return c.Listen.String() }}},
		DHCP:     fakeDHCP{&fakeRole[dhcp.Config]{os: f, name: "dhcp", describe: func(c *dhcp.Config) string { return c.Server.Addr().String() }}},
	}
}

// fakeNIC holds addresses in a map; Probe answers from fakeOS.holders.
type fakeNIC struct {
	os *fakeOS
	mu sync.Mutex
	on map[netip.Prefix]aliases.Alias
	// foreign are addresses on the NIC gatewayd did not add, by label.
	foreign map[netip.Prefix]string
	desired []aliases.Alias
}

func (n *fakeNIC) steps(want []aliases.Alias) []aliases.Step {
	var out []aliases.Step
	keep := map[netip.Prefix]bool{}
	for _, a := range want {
		keep[a.Prefix] = true
		if _, ok := n.foreign[a.Prefix]; ok {
			out = append(out, aliases.Step{Op: aliases.OpConflict, Interface: "eth1", Alias: a, Reason: "on the NIC, not added by gatewayd"})
			continue
		}
		if _, ok := n.on[a.Prefix]; !ok {
			out = append(out, aliases.Step{Op: aliases.OpAdd, Interface: "eth1", Alias: a})
		}
	}
	for _, p := range slices.SortedFunc(func(yield func(netip.Prefix) bool) {
		for p := range n.on {
			if !yield(p) {
				return
			}
		}
	}, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
		if !keep[p] {
			out = append(out, aliases.Step{Op: aliases.OpDel, Interface: "eth1", Alias: n.on[p]})
		}
	}
	return out
}

func (n *fakeNIC) Plan(want []aliases.Alias) ([]aliases.Step, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.steps(want), nil
}

func (n *fakeNIC) SetQuiet(_ context.Context, want []aliases.Alias) (aliases.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.desired = slices.Clone(want)
	var res aliases.Result
	var errs []error
	for _, s := range n.steps(want) {
		if err := n.os.record("aliases: %s", s); err != nil {
			errs = append(errs, err)
			continue
		}
		if s.Op == aliases.OpAdd {
			n.on[s.Alias.Prefix] = s.Alias
		} else {
			delete(n.on, s.Alias.Prefix)
		}
		res.Done = append(res.Done, s)
	}
	return res, errors.Join(errs...)
}

func (n *fakeNIC) Announce(addrs ...netip.Addr) error {
	return n.os.record("aliases: announce %v", addrs)
}

func (n *fakeNIC) SetAnnounce(aliases.Announce) {}

func (n *fakeNIC) Owned() ([]netip.Prefix, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []netip.Prefix
	for p := range n.on {
		out = append(out, p)
	}
	return out, nil
}

func (n *fakeNIC) Probe(_ context.Context, a netip.Addr, _ time.Duration) (net.HardwareAddr, error) {
	_ = n.os.record("aliases: probe %s", a)
	n.os.mu.Lock()
	defer n.os.mu.Unlock()
	return n.os.holders[a], nil
}

func (n *fakeNIC) Status() []aliases.AliasStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []aliases.AliasStatus
	for _, a := range n.desired {
		_, on := n.on[a.Prefix]
		out = append(out, aliases.AliasStatus{Alias: a, Present: on, Owned: on})
	}
	return out
}

func (n *fakeNIC) Link() aliases.LinkStatus {
	return aliases.LinkStatus{Interface: "eth1", Present: true, Up: true}
}

// Adopt takes over, from fakeOS.foreign, the addresses that match exactly.
func (n *fakeNIC) Adopt(want []aliases.Alias) ([]aliases.Alias, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []aliases.Alias
	for _, a := range want {
		if f, ok := n.foreign[a.Prefix]; ok && f == a.Label {
			delete(n.foreign, a.Prefix)
			n.on[a.Prefix] = a
			out = append(out, a)
			_ = n.os.record("aliases: adopt %s", a)
		}
	}
	return out, nil
}

func (n *fakeNIC) Disown(adopted []aliases.Alias) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range adopted {
		if _, ok := n.on[a.Prefix]; ok {
			delete(n.on, a.Prefix)
			n.foreign[a.Prefix] = a.Label
			_ = n.os.record("aliases: disown %s", a)
		}
	}
	return nil
}

func (n *fakeNIC) Restores() (int, time.Time) { return 0, time.Time{} }

func (n *fakeNIC) Watch(ctx context.Context) error { <-ctx.Done(); return nil }
func (n *fakeNIC) Purge(context.Context) ([]aliases.Alias, error) {
	return nil, n.os.record("aliases: purge")
}
func (n *fakeNIC) Close() error   { return nil }
func (n *fakeNIC) Writes() uint64 { return n.os.count("aliases: ip ") }

// fakeFirewall records the aliases and zones of each new ruleset.
type fakeFirewall struct {
	os      *fakeOS
	applied *firewall.Ruleset
}

func (f *fakeFirewall) Set(r *firewall.Ruleset) error {
	if f.applied != nil && f.applied.Render() == r.Render() {
		return nil
	}
	var names, zones []string
	for _, a := range r.Aliases {
		names = append(names, a.Name)
	}
	for _, z := range r.Zones {
		zones = append(zones, z.Name)
	}
	if err := f.os.record("firewall: set aliases=%s zones=%s", strings.Join(names, ","), strings.Join(zones, ",")); err != nil {
		return err
	}
	f.applied = r
	return nil
}

func (f *fakeFirewall) Watch(ctx context.Context, _ func()) error {
	<-ctx.Done()
	return nil
}
func (f *fakeFirewall) Applied() *firewall.Ruleset           { return f.applied }
func (f *fakeFirewall) Counters() (firewall.Counters, error) { return firewall.Counters{}, nil }
func (f *fakeFirewall) Purge() error                         { return f.os.record("firewall: purge") }
func (f *fakeFirewall) Close() error                         { return nil }
func (f *fakeFirewall) Batches() uint64                      { return f.os.count("firewall: set") }

// fakeRole is a role that records starts, updates and stops of its value.
type fakeRole[T any] struct {
	os       *fakeOS
	name     string
	describe func(*T) string
	cur      *T
	held     bool // a previous run's state is in its record
}

func (r *fakeRole[T]) Set(_ context.Context, c *T) error {
	var err error
	switch {
	case r.cur == nil && c == nil:
		return nil
	case c == nil:
		err = r.os.record("%s: stop", r.name)
	case r.cur == nil:
		err = r.os.record("%s: start %s", r.name, r.describe(c))
	case reflect.DeepEqual(*r.cur, *c):
		return nil
	default:
		err = r.os.record("%s: update %s (%s)", r.name, r.describe(c), strings.Join(changedFields(r.cur, c), ", "))
	}
	if err == nil {
		r.cur = c
	}
	return err
}

func (r *fakeRole[T]) Plan(*T) []string      { return nil }
func (r *fakeRole[T]) Status() router.Status { return router.Status{} }
func (r *fakeRole[T]) Purge() error          { return r.os.record("%s: purge", r.name) }
func (r *fakeRole[T]) Close() error          { return nil }
func (r *fakeRole[T]) Writes() uint64        { return r.os.count(r.name + ": ") }
func (r *fakeRole[T]) Holds() bool           { return r.cur != nil || r.held }

// The DNS and DHCP fakes need their own Status types.
type fakeDNS struct{ *fakeRole[dns.Config] }

func (fakeDNS) Status() dns.Status { return dns.Status{} }

type fakeDHCP struct{ *fakeRole[dhcp.Config] }

func (fakeDHCP) Status() dhcp.Status              { return dhcp.Status{} }
func (fakeDHCP) Leases() []dhcp.Lease             { return nil }
func (fakeDHCP) Import([]dhcp.Lease) (int, error) { return 0, nil }
func (fakeDHCP) Reopens() uint64                  { return 0 }

func (fakeDHCP) Delete(netip.Addr, net.HardwareAddr) ([]dhcp.Lease, error) { return nil, nil }
