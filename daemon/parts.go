package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"gatewayd/config"
	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
)

// openParts creates the firewall and the roles, in apply order, and the
// control requests the DHCP role answers.
func openParts(c *config.Config, log *slog.Logger) ([]Part, map[string]func(json.RawMessage) (any, error), error) {
	fw, err := firewall.Open(firewall.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("opening the firewall: %w", err)
	}
	rt, err := router.Open(router.Options{Interface: c.Gateway.Interface, StateDir: c.Gateway.StateDir, Logger: log})
	if err != nil {
		fw.Close()
		return nil, nil, fmt.Errorf("opening the router role: %w", err)
	}
	dnsSrv := dns.New(dns.Options{Logger: log})
	dhcpSrv, err := dhcp.New(dhcp.Options{Interface: c.Gateway.Interface, StateDir: c.Gateway.StateDir, Logger: log, Names: dnsSrv})
	if err != nil {
		fw.Close()
		rt.Close()
		return nil, nil, fmt.Errorf("opening the DHCP role: %w", err)
	}
	parts := []Part{
		&firewallPart{fw: fw},
		&role{name: "router", deps: routerDeps, set: rt.Set, close: rt.Close, status: func() any { return rt.Status() },
			plan: func(_, next *config.Config) []string { return rt.Plan(next) }},
		&role{name: "dns", deps: dnsDeps, set: dnsSrv.Set, close: dnsSrv.Close, status: func() any { return dnsSrv.Status() }},
		&role{name: "dhcp", deps: dhcpDeps, set: dhcpSrv.Set, close: dhcpSrv.Close, status: func() any { return dhcpSrv.Status() }},
	}
	return parts, leaseOps(dhcpSrv), nil
}

// leaseOps are the control requests of `gatewayd leases`.
func leaseOps(s *dhcp.Server) map[string]func(json.RawMessage) (any, error) {
	return map[string]func(json.RawMessage) (any, error){
		"leases": func(json.RawMessage) (any, error) { return s.Leases(), nil },
		"leases-import": func(data json.RawMessage) (any, error) {
			var leases []dhcp.Lease
			if err := json.Unmarshal(data, &leases); err != nil {
				return nil, fmt.Errorf("reading the leases to import: %w", err)
			}
			n, err := s.Import(leases)
			return map[string]int{"imported": n}, err
		},
	}
}

// openPurgers creates what `gatewayd purge` needs of each subsystem.
func openPurgers(c *config.Config, log *slog.Logger) ([]purger, error) {
	var out []purger
	fw, ferr := firewall.Open(firewall.Options{Logger: log})
	if ferr == nil {
		out = append(out, named{"table inet gatewayd", func(context.Context) error { defer fw.Close(); return fw.Purge() }})
	}
	rt, rerr := router.Open(router.Options{Interface: c.Gateway.Interface, StateDir: c.Gateway.StateDir, Logger: log})
	if rerr == nil {
		out = append(out, named{"gatewayd's routes and sysctls", func(context.Context) error { defer rt.Close(); return rt.Purge() }})
	}
	return out, errors.Join(ferr, rerr)
}

type named struct {
	name  string
	purge func(context.Context) error
}

func (n named) Name() string                    { return n.name }
func (n named) Purge(ctx context.Context) error { return n.purge(ctx) }

// planners are parts that plan without the kernel, for `gatewayd plan` when
// the daemon is not running.
func planners(c *config.Config) []Part {
	return []Part{&firewallPart{}, &role{name: "router", deps: routerDeps}, &role{name: "dns", deps: dnsDeps}, &role{name: "dhcp", deps: dhcpDeps}}
}

// firewallPart drives table inet gatewayd.
type firewallPart struct{ fw *firewall.Firewall }

func (p *firewallPart) Name() string { return "firewall" }

func (p *firewallPart) Plan(prev, next *config.Config) []string {
	var old *firewall.Ruleset
	if p.fw != nil {
		old = p.fw.Applied()
	} else if prev != nil {
		old = firewall.Build(prev)
	}
	diff := firewall.Diff(old, firewall.Build(next))
	if diff == "" {
		return nil
	}
	return splitLines(diff)
}

func (p *firewallPart) Set(_ context.Context, c *config.Config) error {
	return p.fw.Set(firewall.Build(c))
}

func (p *firewallPart) Status() any {
	cs, err := p.fw.Counters()
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	return cs
}

// Close releases the netlink socket; the table stays, so the box never fails open.
func (p *firewallPart) Close() error { return p.fw.Close() }

// role adapts a role's server to Part. deps picks the parts of the config the
// role depends on, so plan can say whether it changes.
type role struct {
	name   string
	deps   func(*config.Config) deps
	set    func(context.Context, *config.Config) error
	close  func() error
	status func() any
	plan   func(prev, next *config.Config) []string // extra steps (the router's kernel plan)
}

func (r *role) Name() string                                    { return r.name }
func (r *role) Set(ctx context.Context, c *config.Config) error { return r.set(ctx, c) }
func (r *role) Close() error                                    { return r.close() }
func (r *role) Status() any                                     { return r.status() }

func (r *role) Plan(prev, next *config.Config) []string {
	steps := rolePlan(r.name, r.deps, prev, next)
	if r.plan != nil {
		steps = append(steps, r.plan(prev, next)...)
	}
	return steps
}

// rolePlan says whether a role starts, stops, moves or is reconfigured.
func rolePlan(name string, deps func(*config.Config) deps, prev, next *config.Config) []string {
	var was, is *config.Alias
	var wasHeld, isHeld bool
	if prev != nil {
		was, wasHeld = prev.RoleAlias(name)
	}
	is, isHeld = next.RoleAlias(name)
	switch {
	case isHeld && !wasHeld:
		return []string{fmt.Sprintf("%s: start on %s (alias %s)", name, is.Address.Addr(), is.Name)}
	case wasHeld && !isHeld && is != nil:
		return []string{fmt.Sprintf("%s: stop here; the role lives on host %s (alias %s)", name, is.Host, is.Name)}
	case wasHeld && !isHeld:
		return []string{fmt.Sprintf("%s: stop (no [%s] section)", name, name)}
	case !isHeld && is != nil && (prev == nil || was == nil || was.Host != is.Host):
		return []string{fmt.Sprintf("# %s runs on host %s (alias %s, %s)", name, is.Host, is.Name, is.Address.Addr())}
	case !isHeld:
		return nil
	case was.Address.Addr() != is.Address.Addr():
		return []string{fmt.Sprintf("%s: move from %s to %s (the new listener opens before the old closes)", name, was.Address.Addr(), is.Address.Addr())}
	}
	if changed := changedDeps(deps(prev), deps(next)); len(changed) > 0 {
		return []string{fmt.Sprintf("%s: update %s (keeps serving)", name, strings.Join(changed, ", "))}
	}
	return nil
}

// deps names the parts of the config a role depends on.
type deps map[string]any

// changedDeps lists, in name order, the parts that differ.
func changedDeps(a, b deps) []string {
	var out []string
	for _, k := range sortedNames(map[string]any(b)) {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, k)
		}
	}
	return out
}

func routerDeps(c *config.Config) deps {
	return deps{"routes": c.Router.Routes, "upstream": c.Router.Upstream, "masquerade": c.Router.Masquerade}
}

func dnsDeps(c *config.Config) deps {
	d := c.DNS
	return deps{
		"domain": d.Domain, "hosts": d.Hosts, "cnames": d.CNAMEs, "upstreams": d.UpstreamAddrs,
		"conditional forwarding": d.Forward, "cache": d.Cache, "rebind protection": d.Rebind,
		"timeouts": []any{d.Timeout, d.MaxFlight, d.LocalTTL}, "alias names": aliasAddrs(c),
		"clients (zones allowing dns)": []any{c.Zones, c.Services["dns"]}, "static lease names": staticLeases(c),
	}
}

func staticLeases(c *config.Config) []config.Static {
	if c.DHCP == nil {
		return nil
	}
	return c.DHCP.Static
}

func dhcpDeps(c *config.Config) deps {
	d := c.DHCP
	return deps{
		"pools": d.Pools, "static leases": d.Static, "lease times": []any{d.LeaseTime, d.OfferTime, d.DeclineTime},
		"authoritative": d.IsAuthoritative(), "probe_before_offer": d.ProbeBeforeOffer, "alias names": aliasAddrs(c),
	}
}

// aliasAddrs is what roles see of the aliases: names and addresses, not labels.
func aliasAddrs(c *config.Config) map[string]string {
	m := map[string]string{}
	for _, a := range c.Aliases {
		m[a.Name] = a.Address.String() + "@" + a.Host
	}
	return m
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
