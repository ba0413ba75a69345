package aliases

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// kernelAddr is one IPv4 address the kernel has on the NIC.
type kernelAddr struct {
	Prefix netip.Prefix
	Label  string
}

func (k kernelAddr) String() string { return fmt.Sprintf("%s (label %s)", k.Prefix, k.Label) }

// ownedFunc answers "did gatewayd add this address to this NIC?" and, if so,
// returns what it recorded about it.
type ownedFunc func(netip.Prefix) (Alias, bool)

// plan is the pure diff from what the kernel has on the NIC to the desired
// set (already validated). The steps come in the order Set carries them
// out: adds, relabels, deletes (add before delete, so a subnet never loses
// all of its addresses on the way), then the conflicts, which change
// nothing. Addresses that owned rejects never appear in an add, relabel or
// delete step.
func plan(ifname string, desired []Alias, kernel []kernelAddr, owned ownedFunc) []Step {
	var adds, relabels, dels, conflicts []Step
	wanted := make(map[netip.Prefix]bool, len(desired))
	for _, d := range desired {
		wanted[d.Prefix] = true
		var exact *kernelAddr
		var foreign *kernelAddr
		for i, k := range kernel {
			if k.Prefix.Addr() != d.Prefix.Addr() {
				continue
			}
			_, mine := owned(k.Prefix)
			if k.Prefix == d.Prefix && mine {
				exact = &kernel[i]
			} else if !mine && foreign == nil {
				foreign = &kernel[i]
			}
		}
		step := Step{Alias: d, Interface: ifname}
		switch {
		case exact != nil && (exact.Label == d.Label || d.KeepLabel):
			continue
		case exact != nil:
			step.Op, step.OldLabel = OpRelabel, exact.Label
			step.Reason = fmt.Sprintf("label is %s, want %s", exact.Label, d.Label)
			relabels = append(relabels, step)
		case foreign != nil:
			step.Op = OpConflict
			step.Reason = fmt.Sprintf("%s is already on %s and was not added by gatewayd; left alone", foreign, ifname)
			conflicts = append(conflicts, step)
		default:
			step.Op = OpAdd
			step.Reason = "not on " + ifname
			adds = append(adds, step)
		}
	}
	for _, k := range kernel {
		rec, mine := owned(k.Prefix)
		if !mine || wanted[k.Prefix] {
			continue
		}
		a := Alias{Name: rec.Name, Prefix: k.Prefix, Label: k.Label}
		dels = append(dels, Step{Op: OpDel, Alias: a, Interface: ifname,
			Reason: "added by gatewayd, no longer desired"})
	}
	slices.SortStableFunc(dels, func(x, y Step) int {
		return cmp.Or(x.Alias.Prefix.Addr().Compare(y.Alias.Prefix.Addr()),
			cmp.Compare(x.Alias.Prefix.Bits(), y.Alias.Prefix.Bits()))
	})
	return slices.Concat(adds, relabels, dels, conflicts)
}
