package router

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// storedLease is the uplink's lease as the record keeps it: the server's ACK
// as it came, and when it came, so a restart asks for the same address.
type storedLease struct {
	Interface string    `json:"interface"`
	ACK       []byte    `json:"ack"`
	Acquired  time.Time `json:"acquired"`
	// ServerMAC is where the ACK came from, so that a release after a
	// restart is unicast too; "" if unknown.
	ServerMAC string `json:"server_mac,omitempty"`
}

func (s *storedLease) lease() (*lease, error) {
	ack, err := dhcpv4.FromBytes(s.ACK)
	if err != nil {
		return nil, fmt.Errorf("lease on %s: %w", s.Interface, err)
	}
	l, err := newLease(s.Interface, ack, s.Acquired)
	if err != nil {
		return nil, fmt.Errorf("lease on %s: %w", s.Interface, err)
	}
	if s.ServerMAC != "" {
		if l.serverMAC, err = net.ParseMAC(s.ServerMAC); err != nil || len(l.serverMAC) != 6 {
			return nil, fmt.Errorf("lease on %s: server MAC address %q", s.Interface, s.ServerMAC)
		}
	}
	l.raw = s.ACK
	return l, nil
}

func (s *storedLease) equal(o *storedLease) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.Interface == o.Interface && bytes.Equal(s.ACK, o.ACK) && s.Acquired.Equal(o.Acquired) && s.ServerMAC == o.ServerMAC
}

// lease is a DHCPv4 lease on the uplink, with what the role takes from it.
type lease struct {
	iface    string
	ack      *dhcpv4.DHCPv4
	raw      []byte // the ACK as stored
	acquired time.Time
	addr     netip.Prefix // yiaddr with the subnet mask
	gateway  netip.Addr   // invalid when the server gave none
	server   netip.Addr   // the server identifier: renewals go there
	// serverMAC is the MAC address the ACK came from, where renewals and
	// the release are unicast; nil if unknown (they are broadcast).
	serverMAC net.HardwareAddr
	dns       []netip.Addr
	mac       net.HardwareAddr // the client hardware address it was given to
	// t1, t2 and expires are when to renew (from the server), rebind
	// (from any server) and give the address up.
	t1, t2, expires time.Time
}

// minLeaseBits is the shortest prefix a lease may give the WAN address: a
// server offering more than a /8 is broken or hostile.
const minLeaseBits = 8

// forever stands for an infinite lease time (0xffffffff seconds).
const forever = 100 * 365 * 24 * time.Hour

// newLease checks an ACK received at acquired and works out its lease.
func newLease(iface string, ack *dhcpv4.DHCPv4, acquired time.Time) (*lease, error) {
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		return nil, fmt.Errorf("a %s is not a lease", ack.MessageType())
	}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !ip.IsGlobalUnicast() {
		return nil, fmt.Errorf("address %s is not a unicast address", ack.YourIPAddr)
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	ones, bits := mask.Size()
	switch {
	case bits != 32:
		return nil, fmt.Errorf("subnet mask %s is not a mask", mask)
	case ones < minLeaseBits:
		// A /0 would make every address on-link through the WAN.
		return nil, fmt.Errorf("subnet mask %s: /%d is shorter than /%d, refused", net.IP(mask), ones, minLeaseBits)
	}
	server, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4())
	if !ok {
		return nil, errors.New("no server identifier")
	}
	lt := ack.IPAddressLeaseTime(0)
	switch {
	case lt <= 0:
		return nil, errors.New("no lease time")
	case lt == 0xffffffff*time.Second:
		lt = forever
	}
	t1 := ack.IPAddressRenewalTime(lt / 2)
	t2 := ack.IPAddressRebindingTime(lt * 7 / 8)
	if t2 <= 0 || t2 > lt {
		t2 = lt * 7 / 8
	}
	if t1 <= 0 || t1 > t2 {
		t1 = t2 * 4 / 7 // lt/2 when t2 is the default
	}
	l := &lease{
		iface: iface, ack: ack, raw: ack.ToBytes(), acquired: acquired,
		addr: netip.PrefixFrom(ip, ones), server: server, mac: ack.ClientHWAddr,
		gateway: leaseGateway(ack),
		t1:      acquired.Add(t1), t2: acquired.Add(t2), expires: acquired.Add(lt),
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			l.dns = append(l.dns, a)
		}
	}
	return l, nil
}

// leaseGateway is the default gateway of an ACK: the default route of option
// 121 when the server sent it (RFC 3442: the client then ignores option 3),
// else the first router of option 3.
func leaseGateway(ack *dhcpv4.DHCPv4) netip.Addr {
	if ack.Options.Has(dhcpv4.OptionClasslessStaticRoute) {
		for _, r := range ack.ClasslessStaticRoute() {
			if ones, _ := r.Dest.Mask.Size(); ones == 0 {
				gw, _ := netip.AddrFromSlice(r.Router.To4())
				return gw
			}
		}
		return netip.Addr{}
	}
	for _, r := range ack.Router() {
		if gw, ok := netip.AddrFromSlice(r.To4()); ok && !gw.IsUnspecified() {
			return gw
		}
	}
	return netip.Addr{}
}

// validUntil is when the address goes with the lease: zero (never) for an
// infinite one.
func (l *lease) validUntil() time.Time {
	if l.expires.Sub(l.acquired) >= forever {
		return time.Time{}
	}
	return l.expires
}

func (l *lease) stored() *storedLease {
	s := &storedLease{Interface: l.iface, ACK: l.raw, Acquired: l.acquired}
	if l.serverMAC != nil {
		s.ServerMAC = l.serverMAC.String()
	}
	return s
}
