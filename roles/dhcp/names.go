package dhcp

import (
	"net/netip"
	"strings"
)

// Names receives the host names of leases, for the DNS role to answer. The DNS
// role's *Server implements it. Calls are made outside the DHCP role's locks,
// in the order the leases change; an implementation must not call back into
// the DHCP role.
type Names interface {
	PublishLease(host string, addr netip.Addr)
	WithdrawLease(host string, addr netip.Addr)
}

// nameChange is one pending call to Names.
type nameChange struct {
	publish bool
	host    string
	addr    netip.Addr
}

// applyNames makes the calls in order; a nil Names ignores them.
func applyNames(n Names, changes []nameChange) {
	if n == nil {
		return
	}
	for _, c := range changes {
		if c.publish {
			n.PublishLease(c.host, c.addr)
		} else {
			n.WithdrawLease(c.host, c.addr)
		}
	}
}

// refusedNames are host names a client may not claim: they would hijack
// lookups every host on the site makes.
var refusedNames = map[string]bool{"localhost": true, "wpad": true}

// sanitizeHostname turns what a client sent (option 12, or the first label of
// option 81) into one valid DNS label: lower case letters, digits and inner
// dashes, at most 63 bytes. A dot ends the label; spaces and underscores
// become dashes; other characters are dropped. It
// returns "" when nothing usable is left or the name is refused.
func sanitizeHostname(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c == '-' || c == '_' || c == ' ':
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	if out == "" || refusedNames[out] {
		return ""
	}
	return out
}

// fqdnFirstLabel reads option 81 (RFC 4702): flags, two obsolete rcodes, then
// the name, in wire format when the E flag is set, else ASCII. It returns the
// first label, or "" when the option is malformed.
func fqdnFirstLabel(opt []byte) string {
	if len(opt) < 4 {
		return ""
	}
	flags, name := opt[0], opt[3:]
	if flags&0x04 == 0 {
		return string(name)
	}
	n := int(name[0])
	if n == 0 || n > 63 || 1+n > len(name) {
		return ""
	}
	return string(name[1 : 1+n])
}

// The rule for a host name two leases ask for: the lease that holds it
// keeps it (as Kea and ISC DDNS do), so no client takes another's name,
// and its traffic, by claiming it; the other lease gets no name, and gets
// it at its next request after the holder's lease has ended. A static
// lease's host name is the administrator's and wins: a dynamic lease
// holding it loses it (dnsmasq instead moves a name to the newest lease).
// A lease's binding.hostname is the name it holds, published through Names
// for A and PTR alike.

// rival returns the lease of another client that holds name and would
// keep it from the client's lease of addr; static tells whether the name
// is the client's static lease's, which takes it from a dynamic holder.
func (a *allocator) rival(name string, static bool, key string, addr uint32, now int64) (hb *binding, keeps bool) {
	if name == "" {
		return nil, false
	}
	hb = a.nameHolder(name, now)
	if hb == nil || hb.addr == addr || hb.key() == key {
		return nil, false
	}
	return hb, !static || hb.static
}

// claimName decides the name the client's new lease of addr holds: name,
// or "" when another client's lease holds it. When a static lease's name
// is held by a dynamic lease, that lease is returned without it, to store.
func (h *handler) claimName(name string, static bool, c client, addr uint32, now int64) (string, *binding) {
	hb, keeps := h.alloc.rival(name, static, c.key, addr, now)
	switch {
	case hb == nil:
		return name, nil
	case keeps:
		h.log.Info("a host name another lease holds: not published for this one", "host", name,
			"addr", u32Addr(addr), "mac", macString(c.mac), "holder", u32Addr(hb.addr))
		return "", nil
	}
	h.log.Info("a static lease's host name was held by a dynamic lease: moved", "host", name,
		"from", u32Addr(hb.addr), "mac", macString(hb.mac), "to", u32Addr(addr))
	loser := *hb
	loser.hostname = ""
	return name, &loser
}

// Flags of option 81 (RFC 4702 §2.1).
const (
	fqdnS = 1 << 0 // the server updates the A record
	fqdnO = 1 << 1 // the server overrode the client's S
	fqdnE = 1 << 2 // the name is in DNS wire format
	fqdnN = 1 << 3 // the server makes no DNS update
)

// answerFQDN answers the client's option 81 (RFC 4702 §4): N set and S
// clear, since the server sends no DNS update anywhere (its own DNS role
// answers the names of leases, A and PTR, and that is all), O set when the
// client asked for S, the client's encoding, RCODEs 255, and the name the
// lease holds, qualified with the pool's domain; empty when it holds none.
func answerFQDN(req *packet, r *reply, host, domain string) {
	q := req.opts.get(optClientFQDN)
	if len(q) < 3 {
		return
	}
	flags := q[0]&fqdnE | fqdnN
	if q[0]&fqdnS != 0 {
		flags |= fqdnO
	}
	v := []byte{flags, 255, 255}
	name := host
	if host != "" && domain != "" {
		name = host + "." + strings.TrimSuffix(domain, ".")
	}
	if flags&fqdnE == 0 {
		r.opts.set(optClientFQDN, r.bytes(append(v, name...)...))
		return
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 {
			break
		}
		v = append(append(v, byte(len(l))), l...)
	}
	if host != "" && domain != "" {
		v = append(v, 0) // fully qualified; a bare host name is a partial name
	}
	r.opts.set(optClientFQDN, r.bytes(v...))
}
