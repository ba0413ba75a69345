package daemon

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gatewayd/aliases"
	"gatewayd/config"
	"gatewayd/firewall"
)

// plan is what applying a config would change, in the order it is applied.
type plan struct {
	notes     []string // where aliases and roles this box does not hold live
	firewall  []string // the firewall's diff
	adds      []string // aliases added or relabelled
	roles     []string // roles started, moved, updated, stopped
	dels      []string // aliases removed
	conflicts []aliases.Step
}

// lines renders the plan as the steps `gatewayd plan` and `reload` print.
func (p plan) lines() []string {
	var out []string
	for _, group := range [][]string{p.notes, p.firewall, p.adds, p.roles, p.dels} {
		out = append(out, group...)
	}
	for _, c := range p.conflicts {
		out = append(out, c.String())
	}
	return out
}

// conflictErr refuses a plan whose aliases are on the NIC but not ours.
func (p plan) conflictErr() error { return conflictErr(p.conflicts) }

// plan works out what applying next after prev (nil at start) would change
// on this box, asking the subsystems what the kernel has now.
func (d *Daemon) plan(prev, next *generation) (plan, error) {
	p := plan{notes: append(elsewhereNotes(prev.config(), next.cfg), closedNotes(prev.desired(), next.want)...)}
	steps, err := d.sub.Aliases.Plan(next.want.Aliases)
	if err != nil {
		return p, fmt.Errorf("planning aliases: %w", err)
	}
	p.addAliasSteps(steps, next.want.Adopt)
	p.firewall = splitLines(firewall.Diff(d.sub.Firewall.Applied(), next.want.Firewall))
	p.roles = rolesPlan(prev.desired(), next.want, d.sub.Router.Plan(next.want.Router))
	return p, nil
}

// PlanFromScratch is what starting the daemon on c would do, in apply order,
// for `gatewayd plan` when no daemon runs: the kernel's facts (the NIC's own
// addresses, the interfaces) are read; its addresses and tables are not.
func PlanFromScratch(c *config.Config) []string {
	next := desire(c, readFacts(c))
	p := plan{notes: append(elsewhereNotes(nil, c), closedNotes(nil, next)...)}
	var steps []aliases.Step
	for _, a := range next.Aliases {
		steps = append(steps, aliases.Step{Op: aliases.OpAdd, Interface: c.Gateway.Interface, Alias: a})
	}
	p.addAliasSteps(steps, nil)
	p.firewall = splitLines(firewall.Diff(nil, next.Firewall))
	p.roles = rolesPlan(nil, next, nil)
	return p.lines()
}

// addAliasSteps sorts the aliases' steps into the plan. A conflict that
// adopt = true resolves (the address on the NIC matches the alias exactly)
// is a note: apply takes the address over before it plans.
func (p *plan) addAliasSteps(steps []aliases.Step, adopt []aliases.Alias) {
	for _, s := range steps {
		switch s.Op {
		case aliases.OpDel:
			p.dels = append(p.dels, s.String())
		case aliases.OpConflict:
			if slices.ContainsFunc(adopt, func(a aliases.Alias) bool { return a.Prefix == s.Alias.Prefix && a.Label == s.Alias.Label }) {
				p.notes = append(p.notes, fmt.Sprintf("# alias %s: adopt = true takes over the address already on %s if it matches exactly (%s)", s.Alias, s.Interface, s.Reason))
				continue
			}
			p.conflicts = append(p.conflicts, s)
		case aliases.OpRefuse:
			p.notes = append(p.notes, s.String())
		default:
			p.adds = append(p.adds, s.String())
		}
	}
}

// closedNotes name the interfaces this box closes, when that is new: the
// first start, or a zone no longer naming one.
func closedNotes(prev, next *desired) []string {
	var out []string
	for _, l := range next.Closed {
		if prev == nil || !slices.Contains(prev.Closed, l) {
			out = append(out, fmt.Sprintf("# interface %s is closed: no zone names it, so everything arriving on it is dropped (name it in a zone's interfaces to open it)", l))
		}
	}
	return out
}

// elsewhereNotes name the aliases another host holds, when that is new.
func elsewhereNotes(prev, next *config.Config) []string {
	var out []string
	for _, a := range next.Aliases {
		if next.Holds(a) {
			continue
		}
		var was *config.Alias
		if prev != nil {
			was = prev.Alias(a.Name)
		}
		if was == nil || prev.Holds(*was) || !reflect.DeepEqual(*was, a) {
			out = append(out, fmt.Sprintf("# alias %s (%s) is held by host %s", a.Name, a.Address, a.Host))
		}
	}
	return out
}

// rolesPlan says, role by role in apply order, what changes; routerKernel
// are the router's own kernel steps (sysctls, routes), if it was asked.
func rolesPlan(prev, next *desired, routerKernel []string) []string {
	var out []string
	for _, name := range roleNames {
		out = append(out, rolePlan(name, prev, next)...)
		if name == "router" {
			out = append(out, routerKernel...)
		}
	}
	return out
}

// rolePlan says whether a role starts, stops, moves or is reconfigured; a
// reconfiguration names every field of the role's value that changed.
func rolePlan(name string, prev, next *desired) []string {
	var was holder
	wasKnown := false
	if prev != nil {
		was, wasKnown = prev.Holders[name]
	}
	is, isKnown := next.Holders[name]
	wasHeld, isHeld := wasKnown && was.Held, isKnown && is.Held
	switch {
	case isHeld && !wasHeld:
		return []string{fmt.Sprintf("%s: start on %s (alias %s)", name, is.Addr, is.Alias)}
	case wasHeld && !isHeld && isKnown:
		return []string{fmt.Sprintf("%s: stop here; the role lives on host %s (alias %s)", name, is.Host, is.Alias)}
	case wasHeld && !isHeld:
		return []string{fmt.Sprintf("%s: stop (no [%s] section)", name, name)}
	case !isHeld && isKnown && (!wasKnown || was.Host != is.Host):
		return []string{fmt.Sprintf("# %s runs on host %s (alias %s, %s)", name, is.Host, is.Alias, is.Addr)}
	case !isHeld:
		return nil
	case was.Addr != is.Addr:
		return []string{fmt.Sprintf("%s: move from %s to %s (the new listener opens before the old closes)", name, was.Addr, is.Addr)}
	}
	if changed := changedFields(prev.role(name), next.role(name)); len(changed) > 0 {
		return []string{fmt.Sprintf("%s: update %s (keeps serving)", name, strings.Join(changed, ", "))}
	}
	return nil
}

// role is the desired value of a role, by name (a nil pointer when the
// role does not run here).
func (d *desired) role(name string) any {
	switch name {
	case "router":
		return d.Router
	case "dns":
		return d.DNS
	case "dhcp":
		return d.DHCP
	}
	panic("daemon: no role " + name)
}

// changedFields names, sorted and once each, the fields of two values of
// one struct type (or pointers to it) that differ. A field is named by its
// `plan` tag, else by its name in lower case; `plan:"-"` fields are left
// out (the role's address, which plan reports as a move). Every field is
// compared, so a field added to a part's value can never be missed.
func changedFields(a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.Pointer {
		if va.IsNil() || vb.IsNil() {
			if va.IsNil() != vb.IsNil() {
				return []string{"everything"}
			}
			return nil
		}
		va, vb = va.Elem(), vb.Elem()
	}
	var out []string
	t := va.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("plan")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
