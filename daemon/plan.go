package daemon

import (
	"fmt"
	"reflect"

	"gatewayd/aliases"
	"gatewayd/config"
)

// plan is what applying a config would change, in the order it is applied.
type plan struct {
	notes     []string // where roles this box does not hold live
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

// plan works out what applying next after prev would change.
func (d *Daemon) plan(prev, next *config.Config) (plan, error) {
	var p plan
	for _, a := range next.Aliases {
		if next.Holds(a) {
			continue
		}
		was := (*config.Alias)(nil)
		if prev != nil {
			was = prev.Alias(a.Name)
		}
		if was == nil || prev.Holds(*was) || !reflect.DeepEqual(*was, a) {
			p.notes = append(p.notes, fmt.Sprintf("# alias %s (%s) is held by host %s", a.Name, a.Address, a.Host))
		}
	}
	steps, err := d.nic.Plan(held(next))
	if err != nil {
		return p, fmt.Errorf("planning aliases: %w", err)
	}
	for _, s := range steps {
		switch s.Op {
		case aliases.OpDel:
			p.dels = append(p.dels, s.String())
		case aliases.OpConflict:
			p.conflicts = append(p.conflicts, s)
		default:
			p.adds = append(p.adds, s.String())
		}
	}
	for i, part := range d.parts {
		if i == 0 {
			p.firewall = part.Plan(prev, next)
			continue
		}
		p.roles = append(p.roles, part.Plan(prev, next)...)
	}
	return p, nil
}
