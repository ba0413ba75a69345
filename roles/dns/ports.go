package dns

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// Source ports for upstream queries are drawn from the whole unprivileged
// range, 1024–65535, minus the ports avoided: a socket of a loop's pool
// holds its port for up to portLife, and a service of the box that binds
// a fixed port at that moment must not find it taken (unbound's
// outgoing-port-avoid).
const (
	portLow = 1024
	// portDraws bounds the draws of one port: a drawn port that is avoided
	// is drawn again, which keeps the draw uniform over the ports allowed.
	// With the lists below avoiding a few dozen ports, 16 draws all hit
	// only when the kernel reserves nearly the whole range; then the
	// kernel picks the port.
	portDraws = 16
	// reservedPortsFile is the kernel's net.ipv4.ip_local_reserved_ports
	// (it applies to IPv6 too): ports the admin keeps for services that
	// bind them, which the kernel never picks as ephemeral ports.
	reservedPortsFile = "/proc/sys/net/ipv4/ip_local_reserved_ports"
)

// wellKnownPorts are the UDP ports at or above portLow of services a
// gateway box typically runs or relays, whose daemons bind them when they
// start (a VPN brought up, a daemon restarted): they must find them free.
var wellKnownPorts = []uint16{
	1194,       // OpenVPN
	1645, 1646, // RADIUS, the old ports
	1701,       // L2TP
	1812, 1813, // RADIUS authentication and accounting
	1900,       // SSDP (UPnP discovery)
	3478, 3479, // STUN and TURN
	3799,       // RADIUS dynamic authorization (CoA)
	4500,       // IPsec NAT traversal
	4789,       // VXLAN
	5060, 5061, // SIP
	5351,  // NAT-PMP and PCP
	5353,  // mDNS
	5355,  // LLMNR
	6081,  // Geneve
	8472,  // VXLAN, the Linux kernel's default port
	51820, // WireGuard
}

// portSet is a set of ports, one bit each.
type portSet [65536 / 64]uint64

func (p *portSet) has(port int) bool {
	return p != nil && port >= 0 && port < 65536 && p[port/64]&(1<<(port%64)) != 0
}

// addRange adds the ports lo through hi.
func (p *portSet) addRange(lo, hi int) {
	for port := lo; port <= hi; port++ {
		p[port/64] |= 1 << (port % 64)
	}
}

// draw returns a port drawn uniformly from portLow–65535 minus p, or 0
// (let the kernel pick) when portDraws draws in a row were all avoided.
func (p *portSet) draw() int {
	for range portDraws {
		if port := portLow + rand.IntN(65536-portLow); !p.has(port) {
			return port
		}
	}
	return 0
}

// addPortList adds the ports of a list in the kernel's format ("8080,
// 9000-9100": ports and ranges, comma separated; empty for none). It adds
// every well-formed item and reports the others.
func (p *portSet) addPortList(s string) error {
	var errs []error
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(item, "-")
		a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			errs = append(errs, fmt.Errorf("%q is no port or range of ports", item))
			continue
		}
		p.addRange(int(a), int(b))
	}
	return errors.Join(errs...)
}

// avoidedPorts is the set upstream queries never take a source port
// from: wellKnownPorts and the kernel's reserved ports (read from file;
// an unreadable file adds none, a malformed item is reported and
// skipped).
func avoidedPorts(file string) (*portSet, error) {
	p := new(portSet)
	for _, port := range wellKnownPorts {
		p.addRange(int(port), int(port))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return p, nil // no /proc, or another kernel: the well-known list stands
	}
	if err := p.addPortList(string(b)); err != nil {
		return p, fmt.Errorf("reading the reserved ports in %s: %w", file, err)
	}
	return p, nil
}
