package dhcp

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Lease states as Lease.State reports them.
const (
	StateActive   = "active"   // the address is the client's until Expires
	StateDeclined = "declined" // a client reported the address in use; quarantined until Expires
	StateExpired  = "expired"  // released or run out; remembered to give the client the same address again
)

// Lease is one address binding as `gatewayd leases` lists it and as export and
// import carry it between boxes.
type Lease struct {
	Address netip.Addr `json:"address"`
	// MAC is the client's hardware address, "00:0d:61:0b:d9:a0".
	MAC string `json:"mac,omitempty"`
	// ClientID is option 61 in colon hex ("01:00:0d:61:0b:d9:a0"); when set it,
	// not the MAC, identifies the client.
	ClientID string    `json:"client_id,omitempty"`
	Hostname string    `json:"hostname,omitempty"`
	Expires  time.Time `json:"expires"`
	State    string    `json:"state"`
}

// bindState is a binding's state in memory and in the lease log.
type bindState byte

const (
	bindActive   bindState = 'a'
	bindDeclined bindState = 'd'
	bindExpired  bindState = 'r'
	bindDeleted  bindState = 'x' // in the log only: the address's binding was deleted
)

func (s bindState) String() string {
	switch s {
	case bindActive:
		return StateActive
	case bindDeclined:
		return StateDeclined
	}
	return StateExpired
}

// binding is the allocator's record of one address. mac and clientID hold the
// raw bytes; expires is Unix seconds.
type binding struct {
	addr    uint32
	state   bindState
	static  bool // granted from a [[dhcp.static]] entry
	expires int64
	// freed is the number of the binding's entry in its pool's free queue.
	freed    uint64
	mac      string
	clientID string
	hostname string
	// undo is set while the binding's record is not on disk yet (undo.go);
	// nil once it is written. Kept apart, it costs a binding nothing once
	// written: hundreds of thousands of them are.
	undo *undo
}

// undo is what a binding replaced in memory, to put back if its record
// cannot be written.
type undo struct {
	was, wasClient *binding
	setsClient     bool // put made it its client's binding (byClient)
	failed         bool // its record could not be written
}

// pending reports whether the binding's record is not written yet.
func (b *binding) pending() bool { return b.undo != nil }

// failed reports whether the binding's record could not be written.
func (b *binding) failed() bool { return b.undo != nil && b.undo.failed }

// was is the binding of the address that b replaced, while b's record is
// not written.
func (b *binding) was() *binding {
	if b.undo == nil {
		return nil
	}
	return b.undo.was
}

// key identifies the binding's client: option 61 when the client sent one,
// else its hardware address. A declined binding has no client.
func (b *binding) key() string {
	if b.state == bindDeclined {
		return ""
	}
	return clientKey(b.clientID, b.mac)
}

// clientKey is the map key of a client: "i"+option 61, or "h"+chaddr.
func clientKey(clientID, mac string) string {
	if clientID != "" {
		return "i" + clientID
	}
	return "h" + mac
}

// live reports whether the binding still holds its address at Unix time now.
func (b *binding) live(now int64) bool {
	return b.state != bindExpired && b.expires > now
}

// lease renders the binding for the outside world.
func (b *binding) lease(now int64) Lease {
	st := b.state
	if !b.live(now) {
		st = bindExpired
	}
	return Lease{
		Address:  u32Addr(b.addr),
		MAC:      colonHex(b.mac),
		ClientID: colonHex(b.clientID),
		Hostname: b.hostname,
		Expires:  time.Unix(b.expires, 0).UTC(),
		State:    st.String(),
	}
}

// bindingOf converts an imported Lease; it checks what import must refuse.
func bindingOf(l Lease) (*binding, error) {
	if !l.Address.Is4() {
		return nil, fmt.Errorf("lease %s: not an IPv4 address", l.Address)
	}
	b := &binding{addr: addrU32(l.Address), expires: l.Expires.Unix(), hostname: sanitizeHostname(l.Hostname)}
	switch l.State {
	case StateActive, "":
		b.state = bindActive
	case StateDeclined:
		b.state = bindDeclined
	case StateExpired:
		b.state = bindExpired
	default:
		return nil, fmt.Errorf("lease %s: unknown state %q (want %s, %s or %s)", l.Address, l.State, StateActive, StateDeclined, StateExpired)
	}
	if l.MAC != "" {
		hw, err := net.ParseMAC(l.MAC)
		if err != nil {
			return nil, fmt.Errorf("lease %s: MAC %q: %w", l.Address, l.MAC, err)
		}
		b.mac = string(hw)
	}
	if l.ClientID != "" {
		id, err := parseColonHex(l.ClientID)
		if err != nil {
			return nil, fmt.Errorf("lease %s: client id %q: %w", l.Address, l.ClientID, err)
		}
		b.clientID = string(id)
	}
	if b.state != bindDeclined && b.mac == "" && b.clientID == "" {
		return nil, fmt.Errorf("lease %s: neither a MAC nor a client id says whose it is", l.Address)
	}
	return b, nil
}

// macString formats a hardware address for logs, aa:bb:cc:dd:ee:ff (slog
// would print a net.HardwareAddr as quoted raw bytes).
func macString[T ~string | ~[]byte](mac T) string { return colonHex(string(mac)) }

// colonHex writes bytes as "01:0a:ff"; "" for none.
func colonHex(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex.EncodeToString([]byte{s[i]}))
	}
	return b.String()
}

// parseColonHex reads "01:0a:ff" (or plain "010aff").
func parseColonHex(s string) ([]byte, error) {
	s = strings.ReplaceAll(strings.ReplaceAll(s, ":", ""), "-", "")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("want hex bytes like 01:0a:ff: %w", err)
	}
	return b, nil
}

// staticClientID reads a [[dhcp.static]] client_id: colon hex when it parses
// as such, else the text itself (dnsmasq's convention for textual ids).
func staticClientID(s string) string {
	if strings.Contains(s, ":") {
		if b, err := parseColonHex(s); err == nil && len(b) > 0 {
			return string(b)
		}
	}
	return s
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// parseAddr4 reads a dotted-quad IPv4 address.
func parseAddr4(s string) (uint32, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return addrU32(a), nil
}
