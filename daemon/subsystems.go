package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"gatewayd/aliases"
	"gatewayd/config"
	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
)

// The subsystems the controller drives, each through its own desired value.
// The real ones are *aliases.NIC, *firewall.Firewall, *router.Router,
// *dns.Server and *dhcp.Server; the controller's tests use fakes that record
// their calls.
type (
	// Aliases holds the alias addresses on the NIC.
	Aliases interface {
		Plan(want []aliases.Alias) ([]aliases.Step, error)
		SetQuiet(ctx context.Context, want []aliases.Alias) (aliases.Result, error)
		Announce(addrs ...netip.Addr) error
		SetAnnounce(a aliases.Announce)
		Owned() ([]netip.Prefix, error)
		Probe(ctx context.Context, a netip.Addr, timeout time.Duration) (net.HardwareAddr, error)
		Status() []aliases.AliasStatus
		Link() aliases.LinkStatus
		Adopt(want []aliases.Alias) ([]aliases.Alias, error)
		Disown(adopted []aliases.Alias) error
		Restores() (int, time.Time) // addresses Watch put back
		Watch(ctx context.Context) error
		Purge(ctx context.Context) ([]aliases.Alias, error)
		Writes() uint64 // netlink writes made so far
		Close() error
	}
	// Firewall holds table inet gatewayd.
	Firewall interface {
		Set(r *firewall.Ruleset) error
		Applied() *firewall.Ruleset
		Counters() (firewall.Counters, error)
		Batches() uint64 // batches (kernel writes) sent so far
		// Watch calls changed whenever the table may have been changed by
		// someone else, until ctx ends.
		Watch(ctx context.Context, changed func()) error
		Purge() error
		Close() error
	}
	// Router holds forwarding, its sysctls and the owned routes.
	Router interface {
		Set(ctx context.Context, c *router.Config) error
		Plan(c *router.Config) []string
		Status() router.Status
		Writes() uint64 // sysctl and route writes made so far
		Holds() bool    // its record holds routes, addresses or sysctls
		Purge() error
		Close() error
	}
	// DNS is the DNS role.
	DNS interface {
		Set(ctx context.Context, c *dns.Config) error
		Status() dns.Status
		Close() error
	}
	// DHCP is the DHCP role and its lease store.
	DHCP interface {
		Set(ctx context.Context, c *dhcp.Config) error
		Status() dhcp.Status
		Leases() []dhcp.Lease
		Import(leases []dhcp.Lease) (int, error)
		Delete(addr netip.Addr, mac net.HardwareAddr) ([]dhcp.Lease, error)
		Reopens() uint64
		Close() error
	}
)

// Subsystems are every part the controller drives.
type Subsystems struct {
	Aliases  Aliases
	Firewall Firewall
	Router   Router
	DNS      DNS
	DHCP     DHCP
}

// Close closes every subsystem that is open, the roles first. It leaves
// what they hold in the kernel: the box keeps its addresses and policy.
func (s Subsystems) Close() error {
	var errs []error
	for _, c := range []struct {
		name string
		c    interface{ Close() error }
	}{{"dhcp", s.DHCP}, {"dns", s.DNS}, {"router", s.Router}, {"firewall", s.Firewall}, {"aliases", s.Aliases}} {
		if c.c == nil {
			continue
		}
		if err := c.c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

// One constructor per subsystem, shared by run, purge and the offline
// commands. Each opens its kernel handles in the calling goroutine's network
// namespace, the daemon's own.

func openAliases(c *config.Config, log *slog.Logger) (*aliases.NIC, error) {
	return aliases.Open(aliases.Options{Interface: c.Gateway.Interface, StateDir: c.Gateway.StateDir, Logger: log, Announce: announceOf(c)})
}

func openFirewall(log *slog.Logger) (*firewall.Firewall, error) {
	fw, err := firewall.Open(firewall.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening the firewall: %w", err)
	}
	return fw, nil
}

func openRouter(c *config.Config, log *slog.Logger) (*router.Router, error) {
	r, err := router.Open(router.Options{StateDir: c.Gateway.StateDir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening the router role: %w", err)
	}
	return r, nil
}

func openDNS(log *slog.Logger) *dns.Server { return dns.New(dns.Options{Logger: log}) }

func openDHCP(c *config.Config, log *slog.Logger, names dhcp.Names, acceptLoss bool) (*dhcp.Server, error) {
	s, err := dhcp.New(dhcp.Options{StateDir: c.Gateway.StateDir, Logger: log, Names: names, AcceptLeaseLoss: acceptLoss})
	if err != nil {
		return nil, fmt.Errorf("opening the DHCP role: %w", err)
	}
	return s, nil
}

// OpenSubsystems opens every subsystem for the daemon; on failure it closes
// what it opened.
func OpenSubsystems(c *config.Config, log *slog.Logger, opts RunOptions) (Subsystems, error) {
	var s Subsystems
	fail := func(err error) (Subsystems, error) {
		_ = s.Close()
		return Subsystems{}, err
	}
	nic, err := openAliases(c, log)
	if err != nil {
		return fail(err)
	}
	s.Aliases = nic
	fw, err := openFirewall(log)
	if err != nil {
		return fail(err)
	}
	s.Firewall = fw
	rt, err := openRouter(c, log)
	if err != nil {
		return fail(err)
	}
	s.Router = rt
	dnsSrv := openDNS(log)
	s.DNS = dnsSrv
	dhcpSrv, err := openDHCP(c, log, dnsSrv, opts.AcceptLeaseLoss)
	if err != nil {
		return fail(err)
	}
	s.DHCP = dhcpSrv
	return s, nil
}
