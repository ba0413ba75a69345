package firewall

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// verify reads table inet gatewayd back and compares what can be counted
// with r: the chains by name, the rules in each chain, the elements of each
// set and the counter objects. Rules are not compared expression by
// expression (GetRules drops some expression types); the rendering is the
// identity and the counts catch a batch the kernel truncated.
func (f *Firewall) verify(r *Ruleset) error {
	cur, err := f.readTable()
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
		have[c.Name] = true
	}
	if len(cur.chains) != len(r.Chains) {
		add("%d chains, want %d", len(cur.chains), len(r.Chains))
	}
	rules, err := f.countRules()
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

	sets := map[string]*nftables.Set{}
	for _, s := range cur.sets {
		sets[s.Name] = s
	}
	if len(cur.sets) != len(r.Sets) {
		add("%d sets, want %d", len(cur.sets), len(r.Sets))
	}
	for _, s := range r.Sets {
		ks := sets[s.Name]
		if ks == nil {
			add("set %s is missing", s.Name)
			continue
		}
		els, err := f.conn.GetSetElements(ks)
		if err != nil {
			return fmt.Errorf("listing the elements of set %s: %w", s.Name, err)
		}
		if want := len(setElements(s)); len(els) != want {
			add("set %s has %d elements, want %d", s.Name, len(els), want)
		}
	}

	var counters []string
	for _, o := range cur.objects {
		if no, ok := o.(*nftables.NamedObj); ok && no.Type == nftables.ObjTypeCounter {
			counters = append(counters, no.Name)
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

// countRules dumps every rule of table inet gatewayd in one request and
// counts them per chain (the library dumps one chain per request).
func (f *Firewall) countRules() (map[string]int, error) {
	counts := map[string]int{}
	err := f.sock.dump(unix.NFT_MSG_GETRULE, []netlink.Attribute{{Type: unix.NFTA_RULE_TABLE, Data: []byte(Table + "\x00")}},
		func(ad *netlink.AttributeDecoder) error {
			var table, chain string
			for ad.Next() {
				switch ad.Type() {
				case unix.NFTA_RULE_TABLE:
					table = ad.String()
				case unix.NFTA_RULE_CHAIN:
					chain = ad.String()
				}
			}
			if table == Table {
				counts[chain]++
			}
			return ad.Err()
		})
	if err != nil {
		return nil, fmt.Errorf("counting the rules of table inet gatewayd: %w", err)
	}
	return counts, nil
}
