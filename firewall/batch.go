package firewall

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/mdlayher/netlink"
)

func gatewaydTable() *nftables.Table {
	return &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
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
		for _, name := range cur.sets {
			cc.DelSet(&nftables.Set{Table: t, Name: name})
		}
		want := map[string]Chain{}
		for _, c := range r.Chains {
			want[c.Name] = c
		}
		for _, c := range cur.chains {
			if w, ok := want[c.name]; !ok || !sameHook(c, w) {
				cc.DelChain(&nftables.Chain{Table: t, Name: c.name})
			}
		}
		counters := map[string]bool{}
		for _, n := range r.Counters {
			counters[n] = true
		}
		for _, o := range cur.objects {
			if o.typ != uint32(nftables.ObjTypeCounter) || !counters[o.name] {
				cc.DeleteObject(&nftables.NamedObj{Table: t, Name: o.name, Type: nftables.ObjType(o.typ)})
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
func sameHook(c kernelChain, w Chain) bool {
	if !c.base || !w.Base() {
		return !c.base && !w.Base()
	}
	nc := nftChain(nil, w)
	return c.hook == uint32(*nc.Hooknum) && c.priority == int32(*nc.Priority) && c.typ == string(nc.Type)
}

// queueRuleset adds r's counters, chains and sets (elements in bounded
// messages), in the order their references need; the rules follow them in
// the batch (ruleMessages).
func queueRuleset(cc *nftables.Conn, t *nftables.Table, r *Ruleset) error {
	for _, name := range r.Counters {
		cc.AddObj(&nftables.CounterObj{Table: t, Name: name})
	}
	for _, c := range r.Chains {
		cc.AddChain(nftChain(t, c))
	}
	ids := setIDs(r)
	for _, s := range r.Sets {
		ns := nftSet(t, s)
		ns.ID = ids[s.Name]
		if err := cc.AddSet(ns, nil); err != nil {
			return fmt.Errorf("adding set %s: %w", s.Name, err)
		}
		for _, chunk := range chunkElements(setElements(s)) {
			if err := cc.SetAddElements(ns, chunk); err != nil {
				return fmt.Errorf("adding elements to set %s: %w", s.Name, err)
			}
		}
	}
	return nil
}

// batch encodes the whole batch: what queue puts through google/nftables,
// then r's rules.
func batch(r *Ruleset, queue func(*nftables.Conn) error) ([]netlink.Message, error) {
	msgs, err := capture(queue)
	if err != nil {
		return nil, err
	}
	rules, err := ruleMessages(r)
	if err != nil {
		return nil, err
	}
	return append(msgs, rules...), nil
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
