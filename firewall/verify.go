package firewall

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// verify reads table inet gatewayd back and compares what can be counted
// with r: the chains by name, the rules in each chain, the elements of each
// set and the counter objects. Rules are not compared expression by
// expression; the rendering is the identity, and the counts catch a batch the
// kernel truncated or a table changed behind gatewayd's back.
func (f *Firewall) verify(r *Ruleset) error {
	cur, err := f.sock.readTable()
	if err != nil {
		return err
	}
	if !cur.exists {
		return errors.New("table inet gatewayd does not exist")
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	have := map[string]bool{}
	for _, c := range cur.chains {
		have[c.name] = true
	}
	if len(cur.chains) != len(r.Chains) {
		add("%d chains, want %d", len(cur.chains), len(r.Chains))
	}
	rules, err := f.sock.countRules()
	if err != nil {
		return err
	}
	for _, c := range r.Chains {
		switch {
		case !have[c.Name]:
			add("chain %s is missing", c.Name)
		case rules[c.Name] != len(c.Rules):
			add("chain %s has %d rules, want %d", c.Name, rules[c.Name], len(c.Rules))
		}
	}

	if len(cur.sets) != len(r.Sets) {
		add("%d sets, want %d", len(cur.sets), len(r.Sets))
	}
	for _, s := range r.Sets {
		if !slices.Contains(cur.sets, s.Name) {
			add("set %s is missing", s.Name)
			continue
		}
		n, err := f.sock.countElements(s.Name)
		if err != nil {
			return err
		}
		if want := len(setElements(s)); n != want {
			add("set %s has %d elements, want %d", s.Name, n, want)
		}
	}

	var counters []string
	for _, o := range cur.objects {
		if o.typ == uint32(nftables.ObjTypeCounter) {
			counters = append(counters, o.name)
		}
	}
	want := slices.Clone(r.Counters)
	slices.Sort(want)
	slices.Sort(counters)
	if len(cur.objects) != len(counters) || !slices.Equal(counters, want) {
		add("%d objects (%d counters), want the %d counters of the ruleset", len(cur.objects), len(counters), len(want))
	}

	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
		}
		return fmt.Errorf("table inet gatewayd differs from the ruleset: %s", strings.Join(problems, "; "))
	}
	return nil
}
