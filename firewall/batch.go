package firewall

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/mdlayher/netlink"
)

func gatewaydTable() *nftables.Table {
	return &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
}

// replaceBatch encodes the batch that replaces the table whole: create it
// (so the delete cannot fail), delete it, then add r. Counters start from
// zero. It is the fallback when the table cannot be updated in place.
func replaceBatch(r *Ruleset, exists bool) ([]netlink.Message, error) {
	head, err := capture(func(cc *nftables.Conn) error {
		t := gatewaydTable()
		if exists {
			cc.AddTable(t)
			cc.DelTable(t)
		}
		cc.AddTable(t)
		for _, name := range r.Counters {
			cc.AddObj(&nftables.CounterObj{Table: t, Name: name})
		}
		for _, c := range r.Chains {
			cc.AddChain(nftChain(t, c))
		}
		ids := setIDs(r)
		for _, s := range r.Sets {
			if err := addSet(cc, t, s, ids[s.Name]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rules, err := ruleMessages(r, nil)
	if err != nil {
		return nil, err
	}
	return slices.Concat(head, rules), nil
}

// addSet queues a new set and its elements, in bounded messages.
func addSet(cc *nftables.Conn, t *nftables.Table, s Set, id uint32) error {
	ns := nftSet(t, s)
	ns.ID = id
	if err := cc.AddSet(ns, nil); err != nil {
		return fmt.Errorf("adding set %s: %w", s.Name, err)
	}
	for _, chunk := range chunkElements(setElements(s)) {
		if err := cc.SetAddElements(ns, chunk); err != nil {
			return fmt.Errorf("adding elements to set %s: %w", s.Name, err)
		}
	}
	return nil
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

var hooks = map[string]*nftables.ChainHook{
	"input":       nftables.ChainHookInput,
	"forward":     nftables.ChainHookForward,
	"output":      nftables.ChainHookOutput,
	"postrouting": nftables.ChainHookPostrouting,
}

// chainPolicy is a base chain's policy as the kernel holds it.
func chainPolicy(c Chain) uint32 {
	if c.Policy == "drop" {
		return uint32(nftables.ChainPolicyDrop)
	}
	return uint32(nftables.ChainPolicyAccept)
}

func nftChain(t *nftables.Table, c Chain) *nftables.Chain {
	nc := &nftables.Chain{Table: t, Name: c.Name}
	if !c.Base() {
		return nc
	}
	nc.Hooknum = hooks[c.Hook]
	nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))
	nc.Type = nftables.ChainType(c.Type)
	policy := nftables.ChainPolicy(chainPolicy(c))
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
