package dhcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Lease file formats ReadLeases recognises.
const (
	FormatGatewayd = "gatewayd" // Export's JSON
	FormatDnsmasq  = "dnsmasq"  // dnsmasq.leases
	FormatISC      = "isc-dhcpd"
)

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

// ReadLeases reads a lease file and says which format it was: gatewayd's
// JSON (Export), a dnsmasq lease file ("expiry mac ip hostname clientid"
// lines) or ISC dhcpd's dhcpd.leases. Only active IPv4 leases are returned
// from the foreign formats.
func ReadLeases(r io.Reader) ([]Lease, string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, "", fmt.Errorf("reading lease file: %w", err)
	}
	switch detect(data) {
	case FormatGatewayd:
		var f exportFile
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, FormatGatewayd, fmt.Errorf("reading gatewayd lease file: %w", err)
		}
		if f.Format != FormatGatewayd {
			return nil, FormatGatewayd, fmt.Errorf("reading gatewayd lease file: format is %q, want %q", f.Format, FormatGatewayd)
		}
		return f.Leases, FormatGatewayd, nil
	case FormatDnsmasq:
		l, err := readDnsmasq(data)
		return l, FormatDnsmasq, err
	default:
		l, err := readISC(data)
		return l, FormatISC, err
	}
}

// detect guesses the format from the first meaningful line.
func detect(data []byte) string {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return FormatGatewayd
	}
	for _, line := range strings.Split(string(trimmed), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		first, _, _ := strings.Cut(line, " ")
		if first == "duid" {
			return FormatDnsmasq
		}
		if _, err := strconv.ParseInt(first, 10, 64); err == nil {
			return FormatDnsmasq
		}
		return FormatISC
	}
	return FormatDnsmasq // empty: no leases either way
}

// readDnsmasq reads dnsmasq's lease file. IPv6 lines (after "duid") are skipped.
func readDnsmasq(data []byte) ([]Lease, error) {
	var out []Lease
	sc := bufio.NewScanner(bytes.NewReader(data))
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
		out = append(out, l)
	}
	return out, sc.Err()
}
