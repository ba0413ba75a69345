package aliases

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Alias is one address gatewayd should hold on the NIC.
type Alias struct {
	Name   string       // the role's name in the config, e.g. "dns"; for messages and the record
	Prefix netip.Prefix // the address with its subnet length, e.g. 192.168.1.3/24 (not masked)
	Label  string       // e.g. "eth1:2": <interface>:<something>, never the bare interface name
	// KeepLabel accepts whatever label an owned address already has: a label
	// the config numbered by position must not make Set delete and add an
	// address (a role outage) just because an alias before it was removed.
	KeepLabel bool
}

func (a Alias) String() string {
	if a.Name == "" {
		return a.Prefix.String()
	}
	return fmt.Sprintf("%s (%s)", a.Name, a.Prefix)
}

// maxLabel is the kernel's IFNAMSIZ-1: labels and interface names are at
// most 15 bytes.
const maxLabel = 15

// validate checks the desired set for the NIC ifname and returns the
// valid aliases. Every problem is reported, each naming its alias. Two
// aliases may share a label (the kernel allows it, and the controller's
// transitional sets, old plus new, can briefly have that).
func validate(ifname string, desired []Alias) ([]Alias, error) {
	var errs []error
	out := make([]Alias, 0, len(desired))
	byAddr := map[netip.Addr]Alias{}
	for _, a := range desired {
		if err := checkAlias(ifname, a); err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := byAddr[a.Prefix.Addr()]; ok {
			errs = append(errs, fmt.Errorf("alias %s: address %s is also alias %s", a, a.Prefix.Addr(), prev))
			continue
		}
		byAddr[a.Prefix.Addr()] = a
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

func checkAlias(ifname string, a Alias) error {
	switch {
	case !a.Prefix.IsValid():
		return fmt.Errorf("alias %q: no valid address/length (want e.g. 192.168.1.1/24)", a.Name)
	case !a.Prefix.Addr().Is4():
		return fmt.Errorf("alias %s: only IPv4 aliases are supported", a)
	case a.Prefix.Addr().IsUnspecified(), a.Prefix.Addr().IsMulticast(), a.Prefix.Addr().IsLoopback(),
		a.Prefix.Addr() == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("alias %s: %s cannot be an interface address", a, a.Prefix.Addr())
	case a.Label == "" || a.Label == ifname:
		// removable never removes the first address of a subnet labelled
		// with the bare interface name (the NIC's own address): such an
		// alias could be added but never taken away again.
		return fmt.Errorf("alias %s: label %q: label must be %s:<something>, e.g. %s:0; the bare interface name is the NIC's own address",
			a, a.Label, ifname, ifname)
	case len(a.Label) > maxLabel:
		return fmt.Errorf("alias %s: label %q is longer than %d bytes", a, a.Label, maxLabel)
	case !strings.HasPrefix(a.Label, ifname):
		// iproute2 refuses labels that do not start with the device name,
		// and so would the operator reading `ip addr`.
		return fmt.Errorf("alias %s: label %q must start with the interface name %q (e.g. %s:0)", a, a.Label, ifname, ifname)
	}
	return nil
}

// Step operations.
const (
	OpAdd      = "add"      // add the address with its label
	OpDel      = "del"      // remove an address gatewayd added earlier
	OpRelabel  = "relabel"  // delete and add again: the kernel cannot change a label in place
	OpConflict = "conflict" // the address is on the NIC but not gatewayd's: left alone, reported
	OpRefuse   = "refuse"   // the record names it, but removing it is refused (removable): forgotten, reported
)

// Step is one change Plan proposes and Set carries out. Steps with Op
// OpConflict change nothing; they say why a desired alias is not held.
// Steps with Op OpRefuse change nothing in the kernel either: Set forgets
// the record's entry and returns an error naming it.
type Step struct {
	Op        string
	Alias     Alias  // add, relabel, conflict: the desired alias; del: the address removed
	Interface string // the NIC
	OldLabel  string // relabel: the label the kernel has now
	Reason    string
}

// String renders the step as the ip(8) command doing the same thing.
func (s Step) String() string {
	p := s.Alias.Prefix
	switch s.Op {
	case OpAdd:
		return fmt.Sprintf("ip addr add %s dev %s label %s", p, s.Interface, s.Alias.Label)
	case OpDel:
		return fmt.Sprintf("ip addr del %s dev %s", p, s.Interface)
	case OpRelabel:
		return fmt.Sprintf("ip addr del %s dev %s && ip addr add %s dev %s label %s",
			p, s.Interface, p, s.Interface, s.Alias.Label)
	case OpConflict:
		return fmt.Sprintf("# %s: %s", s.Alias, s.Reason)
	case OpRefuse:
		return fmt.Sprintf("# not removing %s (label %s) from %s: %s", p, s.Alias.Label, s.Interface, s.Reason)
	}
	return fmt.Sprintf("# unknown step %q for %s", s.Op, s.Alias)
}

// writes reports whether carrying out the step changes the kernel.
func (s Step) writes() bool { return s.Op == OpAdd || s.Op == OpDel || s.Op == OpRelabel }
