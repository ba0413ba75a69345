package firewall

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file compares what the kernel holds (readTable) with a ruleset and
// plans the one batch that turns the one into the other, touching only what
// differs: a chain whose rules differ is flushed and refilled, a set gets the
// elements it lacks and loses those it should not have, missing chains, sets
// and counters are added and foreign ones deleted. Counters are never
// recreated, so they keep counting; sets are never recreated, so a lookup in
// flight never misses (recreating large interval sets loses packets).
//
// Rules are compared by fingerprint: every rule gatewayd writes carries a
// hash of its rendering in its userdata (ruleUserData), which the kernel
// stores and lists unchanged, so a chain holds exactly the rules of the
// ruleset when the userdata of its rules, in order, are the ruleset's.
// A rule written by anything else (nft, a hand edit) has no fingerprint and
// differs.

// tablePlan is what turns the kernel's table into a ruleset.
type tablePlan struct {
	// replace is why the table cannot be updated in place (a chain on
	// another hook, a set of another type, an object of another kind under
	// a counter's name); then it is replaced whole and counters restart.
	replace string

	create    bool     // the table is missing
	wake      bool     // the table has flags (dormant): clear them
	addObjs   []string // counters
	delObjs   []kernelObject
	addChains []Chain  // missing, or a base chain whose policy differs
	delChains []string // flushed first, deleted last
	addSets   []Set
	delSets   []string
	elements  []elementDiff
	flush     []string        // existing chains whose rules are replaced
	fill      map[string]bool // chains whose rules are (re)added
}

// elementDiff is what one existing set gains and loses.
type elementDiff struct {
	set      Set
	add, del []nftables.SetElement
}

// empty reports whether the kernel already holds the ruleset.
func (p *tablePlan) empty() bool {
	return p.replace == "" && !p.create && !p.wake && len(p.addObjs) == 0 && len(p.delObjs) == 0 &&
		len(p.addChains) == 0 && len(p.delChains) == 0 && len(p.addSets) == 0 && len(p.delSets) == 0 &&
		len(p.elements) == 0 && len(p.fill) == 0
}

// problems says what differs, at most max items.
func (p *tablePlan) problems(max int) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	switch {
	case p.replace != "":
		add("%s", p.replace)
	case p.create:
		return []string{"table inet gatewayd does not exist"}
	}
	if p.wake {
		add("the table has flags (dormant?)")
	}
	for _, n := range p.addObjs {
		add("counter %s is missing", n)
	}
	for _, o := range p.delObjs {
		add("object %s is not in the ruleset", o.name)
	}
	for _, c := range p.addChains {
		add("chain %s is missing or has another policy", c.Name)
	}
	for _, n := range p.delChains {
		add("chain %s is not in the ruleset", n)
	}
	for _, s := range p.addSets {
		add("set %s is missing", s.Name)
	}
	for _, n := range p.delSets {
		add("set %s is not in the ruleset", n)
	}
	for _, d := range p.elements {
		add("set %s lacks %d elements and has %d others", d.set.Name, len(d.add), len(d.del))
	}
	for _, n := range p.flush {
		add("the rules of chain %s differ", n)
	}
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("and %d more", len(out)-max))
	}
	return out
}

// planUpdate compares the kernel's table with r.
func planUpdate(cur *kernelTable, r *Ruleset) *tablePlan {
	p := &tablePlan{fill: map[string]bool{}}
	if !cur.exists {
		p.create = true
		p.addObjs = slices.Clone(r.Counters)
		p.addChains = slices.Clone(r.Chains)
		p.addSets = slices.Clone(r.Sets)
		for _, c := range r.Chains {
			p.fill[c.Name] = true
		}
		return p
	}
	p.wake = cur.flags != 0
	planObjects(p, cur, r)
	planChains(p, cur, r)
	planSets(p, cur, r)
	return p
}

func planObjects(p *tablePlan, cur *kernelTable, r *Ruleset) {
	have := map[string]uint32{}
	for _, o := range cur.objects {
		have[o.name] = o.typ
	}
	want := map[string]bool{}
	for _, n := range r.Counters {
		want[n] = true
		switch typ, ok := have[n]; {
		case !ok:
			p.addObjs = append(p.addObjs, n)
		case typ != uint32(nftables.ObjTypeCounter):
			p.replace = fmt.Sprintf("object %s is not a counter", n)
		}
	}
	for _, o := range cur.objects {
		if !want[o.name] {
			p.delObjs = append(p.delObjs, o)
		}
	}
}

func planChains(p *tablePlan, cur *kernelTable, r *Ruleset) {
	have := map[string]kernelChain{}
	for _, c := range cur.chains {
		have[c.name] = c
	}
	want := map[string]bool{}
	for _, c := range r.Chains {
		want[c.Name] = true
		kc, ok := have[c.Name]
		switch {
		case !ok:
			p.addChains = append(p.addChains, c)
			p.fill[c.Name] = true
			continue
		case !sameHook(kc, c):
			p.replace = fmt.Sprintf("chain %s is of another kind (hook, type or priority)", c.Name)
			continue
		case c.Base() && kc.policy != chainPolicy(c):
			p.addChains = append(p.addChains, c) // updates the policy in place
		}
		if !sameRules(cur.rules[c.Name], c.Rules) {
			p.flush = append(p.flush, c.Name)
			p.fill[c.Name] = true
		}
	}
	for _, c := range cur.chains {
		if !want[c.name] {
			p.delChains = append(p.delChains, c.name)
		}
	}
}

// sameRules reports whether the kernel's rules (their userdata, in order)
// are exactly rules.
func sameRules(have [][]byte, rules []Rule) bool {
	if len(have) != len(rules) {
		return false
	}
	for i, r := range rules {
		if !bytes.Equal(have[i], ruleUserData(r)) {
			return false
		}
	}
	return true
}

func planSets(p *tablePlan, cur *kernelTable, r *Ruleset) {
	have := map[string]kernelSet{}
	for _, s := range cur.sets {
		have[s.name] = s
	}
	want := map[string]bool{}
	for _, s := range r.Sets {
		want[s.Name] = true
		ks, ok := have[s.Name]
		switch {
		case !ok:
			p.addSets = append(p.addSets, s)
		case !sameSetType(ks, s):
			p.replace = fmt.Sprintf("set %s is of another type", s.Name)
		default:
			if d := diffElements(ks, s); len(d.add)+len(d.del) > 0 {
				p.elements = append(p.elements, d)
			}
		}
	}
	for _, s := range cur.sets {
		if !want[s.name] {
			p.delSets = append(p.delSets, s.name)
		}
	}
}

func sameSetType(ks kernelSet, s Set) bool {
	flags, dataType := uint32(unix.NFT_SET_INTERVAL), uint32(0)
	if s.Map {
		flags |= unix.NFT_SET_MAP
		dataType = unix.NFT_DATA_VERDICT
	}
	return ks.flags == flags && ks.keyType == nftables.TypeIPAddr.GetNFTMagic() &&
		ks.keyLen == nftables.TypeIPAddr.Bytes && ks.dataType == dataType
}

// diffElements compares a set's elements as the kernel holds them with s's.
func diffElements(ks kernelSet, s Set) elementDiff {
	d := elementDiff{set: s}
	have := map[setElem]int{}
	for _, e := range ks.elements {
		have[e]++
	}
	for _, el := range setElements(s) {
		e := elemOf(el)
		if have[e] > 0 {
			have[e]--
			continue
		}
		d.add = append(d.add, el)
	}
	for _, e := range ks.elements {
		if have[e] > 0 {
			have[e]--
			// The key and interval flag are all a deletion needs.
			d.del = append(d.del, nftables.SetElement{Key: []byte(e.key), IntervalEnd: e.end})
		}
	}
	return d
}

func elemOf(el nftables.SetElement) setElem {
	e := setElem{key: string(el.Key), end: el.IntervalEnd}
	if el.VerdictData != nil {
		e.code, e.chain = int32(el.VerdictData.Kind), el.VerdictData.Chain
	}
	return e
}

// updateBatch encodes the batch that carries out p: additions and element
// changes, the flushes, the rules, then the deletions, in the order the
// references between them need.
func updateBatch(r *Ruleset, p *tablePlan) ([]netlink.Message, error) {
	t := gatewaydTable()
	ids := setIDs(r)
	head, err := capture(func(cc *nftables.Conn) error {
		if p.create || p.wake {
			cc.AddTable(t)
		}
		for _, n := range p.addObjs {
			cc.AddObj(&nftables.CounterObj{Table: t, Name: n})
		}
		for _, c := range p.addChains {
			cc.AddChain(nftChain(t, c))
		}
		for _, s := range p.addSets {
			if err := addSet(cc, t, s, ids[s.Name]); err != nil {
				return err
			}
		}
		for _, d := range p.elements {
			ns := nftSet(t, d.set)
			for _, chunk := range chunkElements(d.del) {
				if err := cc.SetDeleteElements(ns, chunk); err != nil {
					return fmt.Errorf("deleting elements of set %s: %w", d.set.Name, err)
				}
			}
			for _, chunk := range chunkElements(d.add) {
				if err := cc.SetAddElements(ns, chunk); err != nil {
					return fmt.Errorf("adding elements to set %s: %w", d.set.Name, err)
				}
			}
		}
		for _, n := range slices.Concat(p.flush, p.delChains) {
			cc.FlushChain(&nftables.Chain{Table: t, Name: n})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rules, err := ruleMessages(r, p.fill)
	if err != nil {
		return nil, err
	}
	tail, err := capture(func(cc *nftables.Conn) error {
		for _, n := range p.delSets {
			cc.DelSet(&nftables.Set{Table: t, Name: n})
		}
		for _, n := range p.delChains {
			cc.DelChain(&nftables.Chain{Table: t, Name: n})
		}
		for _, o := range p.delObjs {
			cc.DeleteObject(&nftables.NamedObj{Table: t, Name: o.name, Type: nftables.ObjType(o.typ)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return slices.Concat(head, rules, tail), nil
}
