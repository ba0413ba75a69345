package dhcp

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Kea's memfile lease store, leases4.csv, is a CSV log: a header naming the
// columns (address,hwaddr,client_id,valid_lifetime,expire,subnet_id,
// fqdn_fwd,fqdn_rev,hostname,state[,user_context[,pool_id]]: columns were
// added over versions, so they are found by name), then one row per change
// of a lease, the last row of an address winning. A deleted lease is
// written with a valid lifetime of 0. expire is cltt + valid_lifetime in
// Unix seconds. state is 0 (assigned), 1 (declined), 2 (expired-reclaimed)
// or 3 (released). Kea writes no quotes; a comma inside a value is escaped
// as "&#x2c".

// Kea lease states (the state column).
const (
	keaDefault  = 0
	keaDeclined = 1
	keaReclaim  = 2
	keaReleased = 3
)

// keaInfinite is the valid lifetime Kea writes for an infinite lease.
const keaInfinite = 0xffffffff

// readKea reads Kea's leases4.csv.
func readKea(data []byte) ([]entry, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	col := map[string]int{}
	var out []entry
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(col) == 0 {
			for i, name := range f {
				col[strings.TrimSpace(name)] = i
			}
			for _, need := range []string{"address", "hwaddr", "client_id", "valid_lifetime", "expire", "hostname"} {
				if _, ok := col[need]; !ok {
					return nil, fmt.Errorf("Kea lease file line %d: the header has no %s column", n, need)
				}
			}
			continue
		}
		e, err := keaRow(f, col)
		if err != nil {
			return nil, fmt.Errorf("Kea lease file line %d: %w", n, err)
		}
		e.line = n
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("Kea lease file: %w", err)
	}
	return out, nil
}

// keaRow reads one row.
func keaRow(f []string, col map[string]int) (entry, error) {
	get := func(name string) string {
		if i, ok := col[name]; ok && i < len(f) {
			return strings.ReplaceAll(f[i], "&#x2c", ",")
		}
		return ""
	}
	addr, err := netip.ParseAddr(get("address"))
	if err != nil {
		return entry{}, fmt.Errorf("address %q: %w", get("address"), err)
	}
	if !addr.Is4() {
		return entry{skip: SkipNotIPv4, extra: addr.String()}, nil
	}
	valid, err := strconv.ParseUint(get("valid_lifetime"), 10, 32)
	if err != nil {
		return entry{}, fmt.Errorf("lease %s: valid_lifetime %q is not a number of seconds", addr, get("valid_lifetime"))
	}
	expire, err := strconv.ParseInt(get("expire"), 10, 64)
	if err != nil {
		return entry{}, fmt.Errorf("lease %s: expire %q is not a Unix time", addr, get("expire"))
	}
	state := int64(keaDefault)
	if s := get("state"); s != "" {
		if state, err = strconv.ParseInt(s, 10, 32); err != nil {
			return entry{}, fmt.Errorf("lease %s: state %q is not a number", addr, s)
		}
	}
	l := Lease{Address: addr, State: StateActive, Expires: time.Unix(expire, 0).UTC(), Hostname: get("hostname")}
	if valid == keaInfinite {
		l.Expires = neverExpires
	}
	if hw := get("hwaddr"); hw != "" {
		mac, err := net.ParseMAC(hw)
		if err != nil {
			return entry{}, fmt.Errorf("lease %s: hwaddr %q: %w", addr, hw, err)
		}
		l.MAC = mac.String()
	}
	if id := get("client_id"); id != "" {
		b, err := parseColonHex(id)
		if err != nil {
			return entry{}, fmt.Errorf("lease %s: client_id %q: %w", addr, id, err)
		}
		l.ClientID = colonHex(string(b))
	}
	e := entry{lease: l}
	switch {
	case valid == 0:
		e.skip, e.extra = SkipDeleted, "Kea deleted it (valid lifetime 0)"
	case state == keaDeclined:
		e.lease.State, e.lease.MAC, e.lease.ClientID, e.lease.Hostname = StateDeclined, "", "", ""
	case state == keaReclaim:
		e.skip, e.extra = SkipNotActive, "expired-reclaimed"
	case state == keaReleased:
		e.skip, e.extra = SkipNotActive, "released"
	case state != keaDefault:
		e.skip, e.extra = SkipNotActive, fmt.Sprintf("Kea state %d", state)
	case l.MAC == "" && l.ClientID == "":
		return entry{}, fmt.Errorf("lease %s: neither a hwaddr nor a client_id says whose it is", addr)
	}
	return e, nil
}
