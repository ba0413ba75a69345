package aliases

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// kernelAddr is one IPv4 address the kernel has on the NIC.
type kernelAddr struct {
	Prefix netip.Prefix
	Label  string
	// Primary: the first address of its subnet (same network and length),
	// which the kernel does not flag secondary. Removing it makes the
	// kernel promote the next one (promote_secondaries), which costs a
	// rewrite of the subnet's routes.
	Primary bool
}

func (k kernelAddr) String() string { return fmt.Sprintf("%s (label %s)", k.Prefix, k.Label) }

// ownedFunc answers "did gatewayd add this address to this NIC?" and, if so,
// returns what it recorded about it.
type ownedFunc func(netip.Prefix) (Alias, bool)

// plan is the pure diff from what the kernel has on the NIC to the desired
// set (already validated). The steps come in the order Set carries them
// out: adds, relabels, deletes (add before delete, so a subnet never loses
// all of its addresses on the way), then the conflicts and refusals, which
// change nothing. Addresses that owned rejects, or that removable refuses,
// never appear in an add, relabel or delete step.
//
// Deletes go secondaries first, then the first addresses of their subnets:
// removing a subnet's first address makes the kernel promote the next one
// and rewrite the routes of every other address of the subnet (0.55 s per
// delete at 10,000 aliases); once the secondaries that go are gone, each
// subnet promotes at most once, an address it keeps, and no address the NIC
// keeps is removed or changes its label.
func plan(ifname string, desired []Alias, kernel []kernelAddr, owned ownedFunc) []Step {
	var adds, relabels, conflicts, refusals []Step
	var dels []kernelDel
	wanted := make(map[netip.Prefix]bool, len(desired))
	// The kernel's addresses by IP: an IP may be on the NIC with several
	// lengths. Looking each desired alias up keeps a plan of 10,000 aliases
	// linear.
	byAddr := make(map[netip.Addr][]int, len(kernel))
	for i, k := range kernel {
		byAddr[k.Prefix.Addr()] = append(byAddr[k.Prefix.Addr()], i)
	}
	for _, d := range desired {
		wanted[d.Prefix] = true
		var exact, foreign *kernelAddr
		var rec Alias
		for _, i := range byAddr[d.Prefix.Addr()] {
			k := kernel[i]
			r, mine := owned(k.Prefix)
			if k.Prefix == d.Prefix && mine {
				exact, rec = &kernel[i], r
			} else if !mine && foreign == nil {
				foreign = &kernel[i]
			}
		}
		step := Step{Alias: d, Interface: ifname}
		switch {
		case exact != nil && (exact.Label == d.Label || d.KeepLabel):
			continue
		case exact != nil:
			if why := removable(ifname, *exact, rec); why != "" {
				refusals = append(refusals, refusal(ifname, *exact, rec, why))
				continue
			}
			step.Op, step.OldLabel = OpRelabel, exact.Label
			step.Reason = fmt.Sprintf("label is %s, want %s", exact.Label, d.Label)
			relabels = append(relabels, step)
		case foreign != nil:
			step.Op = OpConflict
			step.Reason = conflictReason(ifname, d, *foreign)
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
		if why := removable(ifname, k, rec); why != "" {
			refusals = append(refusals, refusal(ifname, k, rec, why))
			continue
		}
		a := Alias{Name: rec.Name, Prefix: k.Prefix, Label: k.Label}
		dels = append(dels, kernelDel{primary: k.Primary, step: Step{Op: OpDel, Alias: a, Interface: ifname,
			Reason: "added by gatewayd, no longer desired"}})
	}
	slices.SortStableFunc(dels, func(x, y kernelDel) int {
		px, py := x.step.Alias.Prefix, y.step.Alias.Prefix
		return cmp.Or(compareBool(x.primary, y.primary),
			px.Addr().Compare(py.Addr()), cmp.Compare(px.Bits(), py.Bits()))
	})
	out := slices.Concat(adds, relabels)
	for _, d := range dels {
		out = append(out, d.step)
	}
	return slices.Concat(out, conflicts, refusals)
}

// kernelDel is a delete step with what its order depends on.
type kernelDel struct {
	primary bool
	step    Step
}

// compareBool orders false before true.
func compareBool(x, y bool) int {
	switch {
	case x == y:
		return 0
	case x:
		return 1
	}
	return -1
}

// conflictReason says why d is not held: its address is on the NIC and not
// gatewayd's. An exact match (address, length and label) is most likely an
// alias from an old /etc/network/interfaces, or a record lost: adopting it
// is the way out.
func conflictReason(ifname string, d Alias, foreign kernelAddr) string {
	if foreign.Prefix == d.Prefix && foreign.Label == d.Label {
		return fmt.Sprintf("%s is already on %s but was not added by gatewayd; it matches alias %s exactly: run `gatewayd adopt` or remove it",
			foreign, ifname, d.Name)
	}
	return fmt.Sprintf("%s is already on %s and was not added by gatewayd; left alone", foreign, ifname)
}

// removable is the last word on removing an address the record names
// (rec): it returns why not, or "". The record is a file, and a file can be
// wrong (forged, copied from another box, stale); the kernel is not. So an
// address is removed only if, in the kernel, its label is one gatewayd
// gives (it starts with the interface name), and, if it is the first
// address of its subnet, its label is exactly the recorded one and not the
// bare interface name: a subnet's first address labelled "eth1" is the
// NIC's own address (ifupdown's, NetworkManager's, `ip addr add` without a
// label), and gatewayd never removes it, whatever a record says.
func removable(ifname string, k kernelAddr, rec Alias) string {
	subnet := k.Prefix.Masked()
	switch {
	case len(k.Label) > maxLabel || !strings.HasPrefix(k.Label, ifname):
		return fmt.Sprintf("its label %s is not one gatewayd gives on %s", k.Label, ifname)
	case k.Primary && k.Label == ifname:
		return fmt.Sprintf("it is the NIC's own address (labelled %s, the first address of %s), which gatewayd never removes", k.Label, subnet)
	case k.Primary && k.Label != rec.Label:
		return fmt.Sprintf("it is the first address of %s and its label %s is not the recorded %q", subnet, k.Label, rec.Label)
	}
	return ""
}

// refusal is the step saying that k, which the record names, is not
// removed, and why.
func refusal(ifname string, k kernelAddr, rec Alias, why string) Step {
	return Step{Op: OpRefuse, Alias: Alias{Name: rec.Name, Prefix: k.Prefix, Label: k.Label}, Interface: ifname,
		Reason: why + "; the record of owned addresses is wrong about it, so gatewayd forgets it and leaves it alone"}
}
