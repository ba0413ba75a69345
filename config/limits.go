package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Upper bounds on values, each chosen well above any real site and well
// below what would cost the box.
const (
	maxString       = 4096 // bytes of any string value (a path is at most 4096)
	maxHost         = 64   // bytes of a host name in [gateway] host and alias host
	maxSocketPath   = 107  // a unix socket path (sun_path is 108 bytes with its NUL)
	maxCacheSize    = 1_000_000
	maxInflight     = 65536
	maxOptionLen    = 255 // bytes of one DHCP option's value
	maxOptionAddrs  = maxOptionLen / 4
	day             = 24 * time.Hour
	maxLeaseTime    = 365 * day
	maxTTL          = 7 * day
	maxDNSTimeout   = time.Minute
	maxProbeTimeout = 30 * time.Second
)

// checkStrings reports every string value of the file longer than
// maxString, before any check quotes one in a message.
func checkStrings(p *problems, f *file) {
	walkStrings(reflect.ValueOf(f).Elem(), "", func(path string, elem int, s string) {
		if len(s) <= maxString {
			return
		}
		if elem >= 0 {
			p.atElem(path, elem, "this string is %d bytes; no gatewayd setting takes more than %d", len(s), maxString)
			return
		}
		p.at(path, "this string is %d bytes; no gatewayd setting takes more than %d", len(s), maxString)
	})
}

// walkStrings calls fn for every string in v, a value of the schema, with its
// key path; elem is the index within an array of strings, else -1.
func walkStrings(v reflect.Value, path string, fn func(path string, elem int, s string)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, fn)
		}
	case reflect.String:
		fn(path, -1, v.String())
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if tag := t.Field(i).Tag.Get("toml"); tag != "" && tag != "-" {
				walkStrings(v.Field(i), join(path, tag), fn)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if e := v.Index(i); e.Kind() == reflect.String {
				fn(path, i, e.String())
			} else {
				walkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn)
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			walkStrings(v.MapIndex(k), join(path, k.String()), fn)
		}
	}
}

// span is the range a duration setting may take; min 0 lets "0s" mean off.
type span struct{ min, max time.Duration }

// checkDuration reports a duration the file wrote outside its span, and
// whether it is inside; def says what leaving the key out gives.
func checkDuration(p *problems, path string, d duration, s span, def string) bool {
	key := path[strings.LastIndexByte(path, '.')+1:]
	switch {
	case !d.set:
	case d.Duration < s.min:
		p.at(path, "%s = %q is too short: at least %s; leave it out for the default (%s)", key, fmtDuration(d.Duration), fmtDuration(s.min), def)
		return false
	case d.Duration > s.max:
		p.at(path, "%s = %q is too long: at most %s", key, fmtDuration(d.Duration), fmtDuration(s.max))
		return false
	}
	return true
}

// fmtDuration writes a duration the way the file does: "12h", "90s", "2d".
func fmtDuration(d time.Duration) string {
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// reserved are the IPv4 blocks no alias, relayed subnet or handed-out server
// may use: the kernel refuses some as interface addresses, and the rest never
// reach a client.
var reserved = []struct {
	block netip.Prefix
	what  string
}{
	{netip.MustParsePrefix("0.0.0.0/32"), "the unspecified address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the limited broadcast address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address (127.0.0.0/8), which never leaves the box"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address (224.0.0.0/4)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (169.254.0.0/16), which routers do not forward"},
}

// reservedIn says which reserved block p overlaps, or "".
func reservedIn(p netip.Prefix) string {
	for _, r := range reserved {
		if p.Addr().Is4() && p.Overlaps(r.block) {
			return r.what
		}
	}
	return ""
}

func reservedAddr(a netip.Addr) string {
	if !a.Is4() {
		return ""
	}
	return reservedIn(netip.PrefixFrom(a, 32))
}

// checkHost checks a host name as [gateway] host and alias host write it.
func checkHost(p *problems, path, host string) {
	switch {
	case len(host) > maxHost:
		p.at(path, "host is %d bytes; a host name is at most %d", len(host), maxHost)
	case strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		p.at(path, "host %q holds a space or control character; write the box's name, e.g. \"gw1\"", host)
	}
}

// checkPath checks an absolute path setting; socket paths are shorter.
func checkPath(p *problems, key, path string, socket bool) {
	switch {
	case !filepath.IsAbs(path):
		p.at("gateway."+key, "%s %q is not an absolute path: write it from /", key, path)
	case strings.ContainsFunc(path, unicode.IsControl):
		p.at("gateway."+key, "%s %q holds a control character", key, path)
	case socket && len(path) > maxSocketPath:
		p.at("gateway."+key, "%s is %d bytes; a unix socket path is at most %d", key, len(path), maxSocketPath)
	}
}
