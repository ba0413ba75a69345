package firewall

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
)

// tableState is what table inet gatewayd holds before a batch.
type tableState struct {
	exists  bool
	chains  []*nftables.Chain
	sets    []*nftables.Set
	objects []nftables.Obj
}

func gatewaydTable() *nftables.Table {
	return &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
}

// readTable lists gatewayd's table, its chains, sets and objects.
func (f *Firewall) readTable() (*tableState, error) {
	tables, err := f.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing inet tables: %w", err)
	}
	st := &tableState{}
	for _, t := range tables {
		if t.Name == Table {
			st.exists = true
		}
	}
	if !st.exists {
		return st, nil
	}
	t := gatewaydTable()
	chains, err := f.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing the chains of table inet gatewayd: %w", err)
	}
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == Table {
			st.chains = append(st.chains, c)
		}
	}
	if st.sets, err = f.conn.GetSets(t); err != nil {
		return nil, fmt.Errorf("listing the sets of table inet gatewayd: %w", err)
	}
	if st.objects, err = f.conn.GetNamedObjects(t); err != nil {
		return nil, fmt.Errorf("listing the objects of table inet gatewayd: %w", err)
	}
	return st, nil
}

// queueRebuild queues the batch that turns the table as it is (cur) into r:
// create the table if missing, delete every rule and every set, delete the
// chains and objects r does not have, then add r. Chains and counters that r
// keeps are updated in place, so counters keep counting.
func queueRebuild(cc *nftables.Conn, r *Ruleset, cur *tableState) error {
	t := gatewaydTable()
	cc.AddTable(t)
	if cur.exists {
		cc.FlushTable(t)
		for _, s := range cur.sets {
			cc.DelSet(&nftables.Set{Table: t, Name: s.Name})
		}
		want := map[string]Chain{}
		for _, c := range r.Chains {
			want[c.Name] = c
		}
		for _, c := range cur.chains {
			if w, ok := want[c.Name]; !ok || !sameHook(c, w) {
				cc.DelChain(&nftables.Chain{Table: t, Name: c.Name})
			}
		}
		counters := map[string]bool{}
		for _, n := range r.Counters {
			counters[n] = true
		}
		for _, o := range cur.objects {
			if no, ok := o.(*nftables.NamedObj); ok && (no.Type != nftables.ObjTypeCounter || !counters[no.Name]) {
				cc.DeleteObject(&nftables.NamedObj{Table: t, Name: no.Name, Type: no.Type})
			}
		}
	}
	return queueRuleset(cc, t, r)
}

// queueReplace queues the batch that replaces the table whole: create it (so
// the delete cannot fail), delete it, then add r. Counters start from zero.
func queueReplace(cc *nftables.Conn, r *Ruleset, exists bool) error {
	t := gatewaydTable()
	if exists {
		cc.AddTable(t)
		cc.DelTable(t)
	}
	cc.AddTable(t)
	return queueRuleset(cc, t, r)
}

// sameHook reports whether the kernel's chain c can be updated in place into
// w: both regular, or both base chains on the same hook, type and priority.
func sameHook(c *nftables.Chain, w Chain) bool {
	if c.Hooknum == nil || !w.Base() {
		return c.Hooknum == nil && !w.Base()
	}
	nc := nftChain(nil, w)
	return *c.Hooknum == *nc.Hooknum && c.Priority != nil && *c.Priority == *nc.Priority && c.Type == nc.Type
}

// queueRuleset adds r's counters, chains, sets (elements in bounded
// messages) and rules, in the order their references need.
func queueRuleset(cc *nftables.Conn, t *nftables.Table, r *Ruleset) error {
	for _, name := range r.Counters {
		cc.AddObj(&nftables.CounterObj{Table: t, Name: name})
	}
	chains := map[string]*nftables.Chain{}
	for _, c := range r.Chains {
		chains[c.Name] = cc.AddChain(nftChain(t, c))
	}
	enc := &encoder{sets: map[string]*nftables.Set{}}
	for _, s := range r.Sets {
		ns := nftSet(t, s)
		if err := cc.AddSet(ns, nil); err != nil {
			return fmt.Errorf("adding set %s: %w", s.Name, err)
		}
		for _, chunk := range chunkElements(setElements(s)) {
			if err := cc.SetAddElements(ns, chunk); err != nil {
				return fmt.Errorf("adding elements to set %s: %w", s.Name, err)
			}
		}
		enc.sets[s.Name] = ns
	}
	for _, c := range r.Chains {
		for i, rl := range c.Rules {
			exprs, err := enc.exprs(rl)
			if err != nil {
				return fmt.Errorf("chain %s rule %d: %w", c.Name, i+1, err)
			}
			cc.AddRule(&nftables.Rule{Table: t, Chain: chains[c.Name], Exprs: exprs, UserData: ruleUserData(rl)})
		}
	}
	return nil
}

var hooks = map[string]*nftables.ChainHook{
	"input":       nftables.ChainHookInput,
	"forward":     nftables.ChainHookForward,
	"output":      nftables.ChainHookOutput,
	"postrouting": nftables.ChainHookPostrouting,
}

func nftChain(t *nftables.Table, c Chain) *nftables.Chain {
	nc := &nftables.Chain{Table: t, Name: c.Name}
	if !c.Base() {
		return nc
	}
	nc.Hooknum = hooks[c.Hook]
	nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))
	nc.Type = nftables.ChainType(c.Type)
	policy := nftables.ChainPolicyAccept
	if c.Policy == "drop" {
		policy = nftables.ChainPolicyDrop
	}
	nc.Policy = &policy
	return nc
}

func nftSet(t *nftables.Table, s Set) *nftables.Set {
	ns := &nftables.Set{Table: t, Name: s.Name, Interval: true, KeyType: nftables.TypeIPAddr, KeyByteOrder: binaryutil.BigEndian}
	if s.Map {
		ns.IsMap, ns.DataType = true, nftables.TypeVerdict
	}
	return ns
}
