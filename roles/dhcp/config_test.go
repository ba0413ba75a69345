package dhcp

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func mustMAC(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

func span(start, end string) Range { return Range{Start: mustAddr(start), End: mustAddr(end)} }

// edited applies the edits to c, for the variants of a seed config.
func edited(c *Config, edits []func(*Config)) *Config {
	for _, e := range edits {
		e(c)
	}
	return c
}

// testConfig is the config the pure tests serve, as the controller resolves
// it from the seed site (router .1, DHCP .2, DNS .3 on 192.0.2.0/24, domain
// lan.test): one pool on the wire with routes and a raw option, one relayed
// pool, two static leases.
func testConfig(edits ...func(*Config)) *Config {
	return edited(&Config{
		Interface:     "eth1",
		Server:        mustPrefix("192.0.2.2/24"),
		Authoritative: true,
		DeclineTime:   10 * time.Minute,
		OfferTime:     30 * time.Second,
		Pools: []Pool{
			{
				Range:      span("192.0.2.100", "192.0.2.109"),
				Subnet:     mustPrefix("192.0.2.0/24"),
				Router:     mustAddr("192.0.2.1"),
				DNS:        []netip.Addr{mustAddr("192.0.2.3")},
				NTP:        []netip.Addr{mustAddr("192.0.2.1")},
				Domain:     "lan.test",
				Broadcast:  mustAddr("192.0.2.255"),
				LeaseTime:  time.Hour,
				RenewTime:  30 * time.Minute,
				RebindTime: 52*time.Minute + 30*time.Second,
				Routes:     []Route{{To: mustPrefix("172.16.0.0/12"), Via: mustAddr("192.0.2.254")}},
				Options:    []Option{{Code: 252, Value: []byte("http://wpad.invalid/wpad.dat"), Always: true}},
			},
			{
				Range:      span("198.51.100.10", "198.51.100.19"),
				Subnet:     mustPrefix("198.51.100.0/24"),
				Relayed:    true,
				Router:     mustAddr("198.51.100.1"),
				DNS:        []netip.Addr{mustAddr("192.0.2.3")},
				Domain:     "lan.test",
				LeaseTime:  2 * time.Hour,
				RenewTime:  time.Hour,
				RebindTime: time.Hour + 45*time.Minute,
			},
		},
		Static: []Static{
			{MAC: mustMAC("02:00:00:00:00:aa"), Address: mustAddr("192.0.2.10"), Hostname: "printer"},
			{ClientID: "01:02:00:00:00:00:bb", Address: mustAddr("192.0.2.11")},
		},
	}, edits)
}

// netConfig is the kernel tests' config: the DHCP alias 192.0.2.2 on eth1
// of namespace gw, one pool on the wire, one reached through a relay, one
// static lease.
func netConfig(edits ...func(*Config)) *Config {
	return edited(&Config{
		Interface:     "eth1",
		Server:        mustPrefix("192.0.2.2/24"),
		Authoritative: true,
		DeclineTime:   24 * time.Hour,
		OfferTime:     time.Minute,
		Pools: []Pool{
			{
				Range:      span("192.0.2.100", "192.0.2.199"),
				Subnet:     mustPrefix("192.0.2.0/24"),
				Router:     mustAddr("192.0.2.1"),
				DNS:        []netip.Addr{mustAddr("192.0.2.3")},
				Domain:     "lan.test",
				LeaseTime:  time.Hour,
				RenewTime:  30 * time.Minute,
				RebindTime: 52*time.Minute + 30*time.Second,
			},
			{
				Range:      span("198.51.100.10", "198.51.100.99"),
				Subnet:     mustPrefix("198.51.100.0/24"),
				Relayed:    true,
				Router:     mustAddr("198.51.100.1"),
				DNS:        []netip.Addr{mustAddr("192.0.2.3")},
				Domain:     "lan.test",
				LeaseTime:  time.Hour,
				RenewTime:  30 * time.Minute,
				RebindTime: 52*time.Minute + 30*time.Second,
			},
		},
		Static: []Static{{MAC: mustMAC("02:00:00:00:00:aa"), Address: mustAddr("192.0.2.10"), Hostname: "printer"}},
	}, edits)
}

// benchConfig is the crash test's and the benchmark's config (perfNet):
// the DHCP alias, the router, a pool of a million addresses for perfdhcp,
// which acts as a relay on the wire (giaddr perfRelay): the pool is chosen
// by giaddr.
func benchConfig() *Config {
	return &Config{
		Interface:     "eth1",
		Server:        mustPrefix(perfAlias + "/12"),
		Authoritative: true,
		DeclineTime:   24 * time.Hour,
		OfferTime:     time.Minute,
		Pools: []Pool{{
			Range:      span(perfFirst, perfLast),
			Subnet:     mustPrefix(perfSubnet),
			Router:     mustAddr(perfRouter),
			DNS:        []netip.Addr{mustAddr(perfRouter)},
			LeaseTime:  12 * time.Hour,
			RenewTime:  6 * time.Hour,
			RebindTime: 10*time.Hour + 30*time.Minute,
		}},
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" when valid
	}{
		{"seed", func(*Config) {}, ""},
		{"no interface", func(c *Config) { c.Interface = "" }, "no interface"},
		{"IPv6 server", func(c *Config) { c.Server = mustPrefix("2001:db8::2/64") }, "not IPv4"},
		{"range reversed", func(c *Config) { c.Pools[0].Range = span("192.0.2.109", "192.0.2.100") }, "192.0.2.109-192.0.2.100"},
		{"no subnet", func(c *Config) { c.Pools[1].Subnet = netip.Prefix{} }, "subnet"},
	} {
		err := testConfig(tc.edit).validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestRange(t *testing.T) {
	r := span("192.0.2.100", "192.0.2.109")
	if r.Size() != 10 || r.String() != "192.0.2.100-192.0.2.109" {
		t.Errorf("size %d, string %s", r.Size(), r)
	}
	for a, want := range map[string]bool{"192.0.2.99": false, "192.0.2.100": true, "192.0.2.109": true, "192.0.2.110": false} {
		if r.Contains(mustAddr(a)) != want {
			t.Errorf("Contains(%s) = %v", a, !want)
		}
	}
	if (Range{}).Contains(mustAddr("0.0.0.0")) {
		t.Error("the zero range contains 0.0.0.0")
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
