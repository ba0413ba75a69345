package dns

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// leaseTable holds the names DHCP clients gave with their leases. It lives
// as long as the Server, across Set calls: the DHCP role publishes into it
// whatever the config does.
type leaseTable struct {
	mu     sync.RWMutex
	byName map[string][]netip.Addr // label → addresses, oldest first
	byAddr map[netip.Addr]string   // address → label
}

func newLeaseTable() *leaseTable {
	return &leaseTable{byName: map[string][]netip.Addr{}, byAddr: map[netip.Addr]string{}}
}

// refusedLabels are names a DHCP client may not claim: every host on the
// site looks them up (the global query block list of Windows DNS, and
// localhost), so a client holding one could hijack them.
var refusedLabels = map[string]bool{"localhost": true, "wpad": true, "isatap": true}

// LeaseLabel turns a DHCP client's hostname (option 12 or 81, anything the
// client sent) into one DNS label: the first label, lower case. It returns
// "" for names that are not valid host labels (RFC 952/1123) and for
// refused ones. The controller names static leases with it too, so a
// configured hostname and a client's own one read the same.
func LeaseLabel(host string) string {
	if i := strings.IndexByte(host, '.'); i >= 0 {
		host = host[:i]
	}
	if host == "" || len(host) > 63 || host[0] == '-' || host[len(host)-1] == '-' {
		return ""
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return ""
		}
	}
	host = strings.ToLower(host)
	if refusedLabels[host] {
		return ""
	}
	return host
}

// publish records that label holds addr. An address has one name: a client
// that renamed itself loses the old one.
func (t *leaseTable) publish(label string, addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.byAddr[addr]; ok {
		if old == label {
			return
		}
		t.removeLocked(old, addr)
	}
	t.byAddr[addr] = label
	t.byName[label] = append(t.byName[label], addr)
}

// withdraw forgets that label holds addr; other pairs stay.
func (t *leaseTable) withdraw(label string, addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byAddr[addr] == label {
		t.removeLocked(label, addr)
	}
}

func (t *leaseTable) removeLocked(label string, addr netip.Addr) {
	delete(t.byAddr, addr)
	addrs := slices.DeleteFunc(t.byName[label], func(a netip.Addr) bool { return a == addr })
	if len(addrs) == 0 {
		delete(t.byName, label)
		return
	}
	t.byName[label] = addrs
}

// addrs returns a copy of the addresses held under label.
func (t *leaseTable) addrs(label string) []netip.Addr {
	return t.appendAddrs(nil, label)
}

// appendAddrs appends the addresses held under label to dst.
func (t *leaseTable) appendAddrs(dst []netip.Addr, label string) []netip.Addr {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append(dst, t.byName[label]...)
}

// name returns the label holding addr.
func (t *leaseTable) name(addr netip.Addr) (string, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	label, ok := t.byAddr[addr]
	return label, ok
}

// len is the number of names.
func (t *leaseTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byName)
}
