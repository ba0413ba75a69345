package dhcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lease file formats ReadLeaseFile recognises.
const (
	FormatGatewayd = "gatewayd" // Export's JSON
	FormatDnsmasq  = "dnsmasq"  // dnsmasq.leases
	FormatISC      = "isc-dhcpd"
	FormatKea      = "kea" // Kea's memfile, leases4.csv
)

// knownFormats is what the error for an unknown file lists.
const knownFormats = "gatewayd's JSON (gatewayd leases export), dnsmasq's dnsmasq.leases, ISC dhcpd's dhcpd.leases and Kea's leases4.csv"

// ErrUnknownFormat is returned for a lease file in none of the formats.
var ErrUnknownFormat = errors.New("not a lease file in a format gatewayd knows")

// maxLeaseFile bounds what ReadLeaseFile reads.
const maxLeaseFile = 256 << 20

// Why entries of a lease file are left out (Skipped.Reason).
const (
	SkipExpired   = "expired"
	SkipNotActive = "not active"       // a binding state other than active (ISC), reclaimed or released (Kea)
	SkipNoState   = "no binding state" // an ISC lease block that says nothing of its state
	SkipDuplicate = "duplicate"        // a later entry of the same address replaces it
	SkipDeleted   = "deleted"          // Kea: written with a valid lifetime of 0
	SkipNotIPv4   = "not IPv4"
)

// LeaseFile is a lease file as ReadLeaseFile read it: what to import and
// what was left out, for the CLI to print.
type LeaseFile struct {
	Format  string    `json:"format"`
	Leases  []Lease   `json:"leases"`
	Skipped []Skipped `json:"skipped,omitempty"`
}

// Skipped is one entry of a lease file left out of Leases.
type Skipped struct {
	Line    int        `json:"line,omitempty"` // 0 when the format has no lines to speak of
	Address netip.Addr `json:"address,omitzero"`
	Reason  string     `json:"reason"` // one of the Skip constants
	Detail  string     `json:"detail,omitempty"`
}

// exportFile is Export's JSON document.
type exportFile struct {
	Format  string  `json:"format"`
	Version int     `json:"version"`
	Leases  []Lease `json:"leases"`
}

// Export writes leases as gatewayd's JSON lease file, which Import reads back
// on another box.
func Export(w io.Writer, leases []Lease) error {
	if leases == nil {
		leases = []Lease{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(exportFile{Format: FormatGatewayd, Version: 1, Leases: leases}); err != nil {
		return fmt.Errorf("exporting leases: %w", err)
	}
	return nil
}

// neverExpires stands for the infinite leases of other servers.
var neverExpires = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// ReadLeaseFile reads a lease file: gatewayd's JSON (Export), a dnsmasq
// lease file ("expiry mac ip hostname clientid" lines), ISC dhcpd's
// dhcpd.leases or Kea's leases4.csv. A file in none of them is refused
// (ErrUnknownFormat, naming the formats). Of the foreign formats only the
// leases that hold their address are returned, the last entry of an address
// winning; everything left out is listed in Skipped with the reason. With a
// non-zero now, leases that ended by then are skipped as expired.
func ReadLeaseFile(r io.Reader, now time.Time) (LeaseFile, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxLeaseFile+1))
	if err != nil {
		return LeaseFile{}, fmt.Errorf("reading lease file: %w", err)
	}
	if len(data) > maxLeaseFile {
		return LeaseFile{}, fmt.Errorf("reading lease file: larger than %d MiB", maxLeaseFile>>20)
	}
	format, why := detect(data)
	if format == "" {
		return LeaseFile{}, fmt.Errorf("%w (%s): gatewayd reads %s", ErrUnknownFormat, why, knownFormats)
	}
	var entries []entry
	switch format {
	case FormatGatewayd:
		entries, err = readJSON(data)
	case FormatDnsmasq:
		entries, err = readDnsmasq(data)
	case FormatKea:
		entries, err = readKea(data)
	default:
		entries, err = readISC(data)
	}
	if err != nil {
		return LeaseFile{Format: format}, err
	}
	return resolve(format, entries, now), nil
}

// entry is one lease of a file in the order read, with why it is not to be
// imported even when it is its address's last entry.
type entry struct {
	lease Lease
	line  int
	skip  string
	extra string
}

// resolve keeps the last entry of each address, in the order addresses
// first appear, and sorts the rest into Skipped.
func resolve(format string, entries []entry, now time.Time) LeaseFile {
	f := LeaseFile{Format: format, Leases: []Lease{}}
	last := map[netip.Addr]int{}
	for i, e := range entries {
		if e.lease.Address.IsValid() {
			last[e.lease.Address] = i
		}
	}
	var order []int
	seen := map[netip.Addr]bool{}
	for i, e := range entries {
		a := e.lease.Address
		switch {
		case !a.IsValid():
			f.Skipped = append(f.Skipped, Skipped{Line: e.line, Reason: e.skip, Detail: e.extra})
		case last[a] != i:
			f.Skipped = append(f.Skipped, Skipped{Line: e.line, Address: a, Reason: SkipDuplicate, Detail: fmt.Sprintf("replaced by the entry at line %d", entries[last[a]].line)})
			if !seen[a] {
				seen[a] = true
				order = append(order, last[a])
			}
		case !seen[a]:
			seen[a] = true
			order = append(order, i)
		}
	}
	for _, i := range order {
		e := entries[i]
		l := e.lease
		switch {
		case e.skip != "":
			f.Skipped = append(f.Skipped, Skipped{Line: e.line, Address: l.Address, Reason: e.skip, Detail: e.extra})
		case !now.IsZero() && l.State != StateExpired && !l.Expires.After(now):
			f.Skipped = append(f.Skipped, Skipped{Line: e.line, Address: l.Address, Reason: SkipExpired, Detail: "ended " + l.Expires.UTC().Format(time.RFC3339)})
		case l.State == StateExpired:
			f.Skipped = append(f.Skipped, Skipped{Line: e.line, Address: l.Address, Reason: SkipExpired})
		default:
			f.Leases = append(f.Leases, l)
		}
	}
	return f
}

// Outside returns the leases whose address is in none of c's pools and is
// no static lease's: they would be kept until they end, but never renewed.
func (c *Config) Outside(leases []Lease) []Lease {
	var out []Lease
	for _, l := range leases {
		in := slices.ContainsFunc(c.Static, func(s Static) bool { return s.Address == l.Address })
		for _, p := range c.Pools {
			in = in || p.Range.Contains(l.Address)
		}
		if !in {
			out = append(out, l)
		}
	}
	return out
}

// detect names the format from the first meaningful line, or returns ""
// and what it saw.
func detect(data []byte) (string, string) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return FormatGatewayd, ""
	}
	isc := bytes.Contains(data, []byte("dhcpd.leases"))
	for _, line := range strings.Split(string(trimmed), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "address,hwaddr,") {
			return FormatKea, ""
		}
		if strings.HasPrefix(line, "address,duid,") {
			return "", "a Kea leases6.csv: its leases are DHCPv6 leases"
		}
		f := strings.Fields(line)
		first := strings.TrimSuffix(f[0], ";")
		if first == "duid" {
			return FormatDnsmasq, ""
		}
		if _, err := strconv.ParseInt(first, 10, 64); err == nil && len(f) >= 2 {
			return FormatDnsmasq, ""
		}
		switch first {
		case "lease", "server-duid", "authoring-byte-order", "failover", "host", "group", "class", "subclass", "ia-na", "ia-ta", "ia-pd", "db-time-format":
			return FormatISC, ""
		}
		if len(line) > 40 {
			line = line[:40] + "…"
		}
		return "", fmt.Sprintf("its first line is %q", line)
	}
	if isc {
		return FormatISC, "" // dhcpd's header comments and no lease yet
	}
	return "", "it holds no lease at all"
}

// readJSON reads Export's document.
func readJSON(data []byte) ([]entry, error) {
	var f exportFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("reading gatewayd lease file: %w", err)
	}
	if f.Format != FormatGatewayd {
		return nil, fmt.Errorf("reading gatewayd lease file: format is %q, want %q", f.Format, FormatGatewayd)
	}
	out := make([]entry, len(f.Leases))
	for i, l := range f.Leases {
		out[i] = entry{lease: l}
	}
	return out, nil
}

// readDnsmasq reads dnsmasq's lease file. IPv6 lines (after "duid") are
// skipped and listed.
func readDnsmasq(data []byte) ([]entry, error) {
	var out []entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "duid" {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("dnsmasq lease file line %d: want \"expiry mac address hostname [client-id]\", got %q", n, sc.Text())
		}
		exp, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dnsmasq lease file line %d: expiry %q is not a Unix time", n, f[0])
		}
		addr, err := netip.ParseAddr(f[2])
		if err != nil {
			return nil, fmt.Errorf("dnsmasq lease file line %d: address %q: %w", n, f[2], err)
		}
		if !addr.Is4() {
			out = append(out, entry{line: n, skip: SkipNotIPv4, extra: addr.String()})
			continue
		}
		mac := f[1]
		if i := strings.IndexByte(mac, '-'); i >= 0 && i <= 2 { // "<hwtype>-<mac>" for non-Ethernet
			mac = mac[i+1:]
		}
		hw, err := net.ParseMAC(mac)
		if err != nil {
			return nil, fmt.Errorf("dnsmasq lease file line %d: MAC %q: %w", n, f[1], err)
		}
		l := Lease{Address: addr, MAC: hw.String(), State: StateActive, Expires: time.Unix(exp, 0).UTC()}
		if exp == 0 {
			l.Expires = neverExpires
		}
		if f[3] != "*" {
			l.Hostname = f[3]
		}
		if len(f) > 4 && f[4] != "*" {
			id, err := parseColonHex(f[4])
			if err != nil {
				return nil, fmt.Errorf("dnsmasq lease file line %d: client id %q: %w", n, f[4], err)
			}
			l.ClientID = colonHex(string(id))
		}
		out = append(out, entry{lease: l, line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dnsmasq lease file: %w", err)
	}
	return out, nil
}
