package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The types below are the file as written: what the TOML library decodes into
// and what the unknown-key check walks by reflection. Validation reads them and
// builds the public model (types.go); it never writes back into them, so a
// value in the model is always one validation resolved.

type file struct {
	Gateway fileGateway             `toml:"gateway"`
	Aliases []fileAlias             `toml:"alias"`
	Router  *fileRouter             `toml:"router"`
	DHCP    *fileDHCP               `toml:"dhcp"`
	DNS     *fileDNS                `toml:"dns"`
	Zones   map[string]*fileZone    `toml:"zone"`
	Service map[string]*fileService `toml:"service"`
}

type fileGateway struct {
	Interface        string   `toml:"interface"`
	Host             string   `toml:"host"`
	StateDir         string   `toml:"state_dir"`
	ControlSocket    string   `toml:"control_socket"`
	LogLevel         string   `toml:"log_level"`
	LogFormat        string   `toml:"log_format"`
	ProbeTimeout     duration `toml:"probe_timeout"`
	AnnounceCount    int      `toml:"announce_count"`
	AnnounceInterval duration `toml:"announce_interval"`
}

type fileAlias struct {
	Name    string       `toml:"name"`
	Address netip.Prefix `toml:"address"`
	Label   string       `toml:"label"`
	Host    string       `toml:"host"`
}

type fileRouter struct {
	Alias      string      `toml:"alias"`
	Upstream   netip.Addr  `toml:"upstream"`
	Masquerade bool        `toml:"masquerade"`
	Routes     []fileRoute `toml:"route"`
}

type fileRoute struct {
	To  netip.Prefix `toml:"to"`
	Via netip.Addr   `toml:"via"`
}

type fileDHCP struct {
	Alias            string       `toml:"alias"`
	LeaseTime        duration     `toml:"lease_time"`
	Authoritative    *bool        `toml:"authoritative"`
	DeclineTime      duration     `toml:"decline_time"`
	OfferTime        duration     `toml:"offer_time"`
	ProbeBeforeOffer bool         `toml:"probe_before_offer"`
	Pools            []filePool   `toml:"pool"`
	Static           []fileStatic `toml:"static"`
}

type filePool struct {
	Range      Range        `toml:"range"`
	Subnet     netip.Prefix `toml:"subnet"`
	Router     string       `toml:"router"`
	DNS        []string     `toml:"dns"`
	NTP        []string     `toml:"ntp"`
	Domain     string       `toml:"domain"`
	LeaseTime  duration     `toml:"lease_time"`
	RenewTime  duration     `toml:"renew_time"`
	RebindTime duration     `toml:"rebind_time"`
	Broadcast  netip.Addr   `toml:"broadcast"`
	Routes     []fileRoute  `toml:"route"`
	Options    []fileOption `toml:"option"`
}

// fileOption is any DHCP option by code; exactly one of Hex, Text, IP is set.
type fileOption struct {
	Code int          `toml:"code"`
	Hex  string       `toml:"hex"`
	Text string       `toml:"text"`
	IP   []netip.Addr `toml:"ip"`
}

type fileStatic struct {
	MAC      mac        `toml:"mac"`
	ClientID string     `toml:"client_id"`
	Address  netip.Addr `toml:"address"`
	Hostname string     `toml:"hostname"`
}

type fileDNS struct {
	Alias     string        `toml:"alias"`
	Domain    string        `toml:"domain"`
	Upstreams []string      `toml:"upstreams"`
	LocalTTL  duration      `toml:"local_ttl"`
	Hosts     []fileHost    `toml:"host"`
	CNAMEs    []fileCNAME   `toml:"cname"`
	Forward   []fileForward `toml:"forward"`
	Cache     fileDNSCache  `toml:"cache"`
	Rebind    fileRebind    `toml:"rebind"`
	Timeout   duration      `toml:"timeout"`
	MaxFlight int           `toml:"max_inflight"`
}

type fileHost struct {
	Name    string     `toml:"name"`
	Address netip.Addr `toml:"address"`
}

type fileCNAME struct {
	Name   string `toml:"name"`
	Target string `toml:"target"`
}

type fileForward struct {
	Domain  string   `toml:"domain"`
	Servers []string `toml:"servers"`
}

type fileDNSCache struct {
	Size       int      `toml:"size"`
	MinTTL     duration `toml:"min_ttl"`
	MaxTTL     duration `toml:"max_ttl"`
	NegTTL     duration `toml:"negative_ttl"`
	ServeStale duration `toml:"serve_stale"`
}

type fileRebind struct {
	Protect *bool    `toml:"protect"`
	Allow   []string `toml:"allow"`
}

type fileZone struct {
	Subnets []netip.Prefix `toml:"subnets"`
	Allow   []string       `toml:"allow"`
	Forward []string       `toml:"forward"`
}

type fileService struct {
	Ports []string `toml:"ports"`
	Alias string   `toml:"alias"`
}

// duration is a time.Duration that reads "12h", "30m", "90s" or "2d"; set
// tells a written "0s" from a key left out.
type duration struct {
	time.Duration
	set bool
}

// UnmarshalText reads a Go duration, or a whole number of days ("2d").
func (d *duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > math.MaxInt64/int(24*time.Hour) {
			return fmt.Errorf("invalid duration %q: want e.g. \"12h\", \"30m\" or \"2d\"", s)
		}
		d.Duration, d.set = time.Duration(days)*24*time.Hour, true
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q: want e.g. \"12h\", \"30m\" or \"2d\"", s)
	}
	d.Duration, d.set = v, true
	return nil
}

// or is the duration, or def when the file left it out.
func (d duration) or(def time.Duration) time.Duration {
	if !d.set {
		return def
	}
	return d.Duration
}

// mac is an Ethernet hardware address as the file writes it.
type mac net.HardwareAddr

// UnmarshalText reads "00:0d:61:0b:d9:a0" (or with dashes).
func (m *mac) UnmarshalText(b []byte) error {
	hw, err := net.ParseMAC(string(b))
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("invalid MAC address %q: want six hex bytes like \"00:0d:61:0b:d9:a0\"", b)
	}
	*m = mac(hw)
	return nil
}
