package config

import (
	"strconv"
	"strings"
	"testing"
)

// afterHost is an edit adding [gateway] keys on line 4.
func afterHost(text string) []string { return []string{"host = \"gw1\"\n", "host = \"gw1\"\n" + text} }

// afterDHCP is an edit adding [dhcp] keys on line 27.
func afterDHCP(text string) []string {
	return []string{"alias = \"dhcp\"\n", "alias = \"dhcp\"\n" + text}
}

// afterDNS is an edit adding [dns] keys on line 44.
func afterDNS(text string) []string {
	return []string{`upstreams = ["192.168.1.254"]` + "\n", `upstreams = ["192.168.1.254"]` + "\n" + text}
}

// One case per bound: zeros that mean nothing, values too large, addresses
// no interface or client can use.
var limitCases = []errCase{
	{name: "lease time zero", edits: afterDHCP("lease_time = \"0s\"\n"),
		at: "27:1", key: "dhcp.lease_time", msg: []string{`lease_time = "0s" is too short: at least 1m; leave it out for the default (12h)`}},
	{name: "lease time of seconds", edits: afterDHCP("lease_time = \"30s\"\n"),
		at: "27:1", key: "dhcp.lease_time", msg: []string{`lease_time = "30s" is too short: at least 1m`}},
	{name: "lease time of years", edits: afterDHCP("lease_time = \"400d\"\n"),
		at: "27:1", key: "dhcp.lease_time", msg: []string{`lease_time = "400d" is too long: at most 365d`}},
	{name: "offer time zero", edits: afterDHCP("offer_time = \"0s\"\n"),
		at: "27:1", key: "dhcp.offer_time", msg: []string{`offer_time = "0s" is too short: at least 1s; leave it out for the default (1m)`}},
	{name: "offer time of days", edits: afterDHCP("offer_time = \"2d\"\n"),
		at: "27:1", key: "dhcp.offer_time", msg: []string{`offer_time = "2d" is too long: at most 1h`}},
	{name: "decline time zero", edits: afterDHCP("decline_time = \"0s\"\n"),
		at: "27:1", key: "dhcp.decline_time", msg: []string{`decline_time = "0s" is too short`, "(24h)"}},
	{name: "pool lease time zero", edits: afterPool1("lease_time = \"0s\"\n"),
		at: "36:1", key: "dhcp.pool[1].lease_time", msg: []string{`lease_time = "0s" is too short: at least 1m; leave it out for the default ([dhcp] lease_time)`}},
	// A zero T1 passes the ordering check (0 < T2 < lease) and still means nothing.
	{name: "renew time zero", edits: afterPool1("renew_time = \"0s\"\n"),
		at: "36:1", key: "dhcp.pool[1].renew_time", msg: []string{`renew_time = "0s" is too short: at least 1s; leave it out for the default (half the lease)`}},
	{name: "rebind time zero", edits: afterPool1("rebind_time = \"0s\"\n"),
		at: "36:1", key: "dhcp.pool[1].rebind_time", msg: []string{`rebind_time = "0s" is too short: at least 1s; leave it out for the default (7/8 of the lease)`}},
	{name: "dns timeout zero", edits: afterDNS("timeout = \"0s\"\n"),
		at: "44:1", key: "dns.timeout", msg: []string{`timeout = "0s" is too short: at least 10ms; leave it out for the default (4s)`}},
	{name: "dns timeout of hours", edits: afterDNS("timeout = \"1h\"\n"),
		at: "44:1", key: "dns.timeout", msg: []string{`timeout = "1h" is too long: at most 1m`}},
	{name: "local ttl zero", edits: afterDNS("local_ttl = \"0s\"\n"),
		at: "44:1", key: "dns.local_ttl", msg: []string{`local_ttl = "0s" is too short: at least 1s`}},
	{name: "max ttl too long", edits: afterDNS("\n[dns.cache]\nmax_ttl = \"30d\"\n"),
		at: "46:1", key: "dns.cache.max_ttl", msg: []string{`max_ttl = "30d" is too long: at most 7d`}},
	{name: "negative ttl zero", edits: afterDNS("\n[dns.cache]\nnegative_ttl = \"0s\"\n"),
		at: "46:1", key: "dns.cache.negative_ttl", msg: []string{`negative_ttl = "0s" is too short: at least 1s; leave it out for the default (1h)`}},
	{name: "min ttl above max ttl", edits: afterDNS("\n[dns.cache]\nmin_ttl = \"2h\"\nmax_ttl = \"1h\"\n"),
		at: "46:1", key: "dns.cache.min_ttl", msg: []string{"min_ttl (2h) is more than max_ttl (1h)"}},
	{name: "cache too large", edits: afterDNS("\n[dns.cache]\nsize = 50000000\n"),
		at: "46:1", key: "dns.cache.size", msg: []string{"cache size 50000000 is more than 1000000 answers"}},
	{name: "max inflight zero", edits: afterDNS("max_inflight = 0\n"),
		at: "44:1", key: "dns.max_inflight", msg: []string{"max_inflight must be 1-65536, not 0"}},
	{name: "max inflight negative", edits: afterDNS("max_inflight = -5\n"),
		at: "44:1", key: "dns.max_inflight", msg: []string{"max_inflight must be 1-65536, not -5"}},
	{name: "probe timeout too long", edits: afterHost("probe_timeout = \"5m\"\n"),
		at: "4:1", key: "gateway.probe_timeout", msg: []string{`probe_timeout = "5m" is too long: at most 30s`}},
	{name: "announce interval zero", edits: afterHost("announce_interval = \"0s\"\n"),
		at: "4:1", key: "gateway.announce_interval", msg: []string{`announce_interval = "0s" is too short: at least 1ms; leave it out for the default (500ms)`}},
	{name: "host too long", edits: []string{`host = "gw1"`, `host = "` + strings.Repeat("g", 65) + `"`},
		at: "3:1", key: "gateway.host", msg: []string{"host is 65 bytes; a host name is at most 64"}},
	{name: "host with a space", edits: []string{"name = \"dns\"\n", "name = \"dns\"\nhost = \"gw 2\"\n"},
		at: "15:1", key: "alias[2].host", msg: []string{`host "gw 2" holds a space or control character`}},
	{name: "control socket too long", edits: afterHost("control_socket = \"/run/" + strings.Repeat("s", 103) + "\"\n"),
		at: "4:1", key: "gateway.control_socket", msg: []string{"control_socket is 108 bytes; a unix socket path is at most 107"}},
	{name: "state dir with a control character", edits: afterHost("state_dir = \"/var/lib/\\u0000x\"\n"),
		at: "4:1", key: "gateway.state_dir", msg: []string{`state_dir "/var/lib/\x00x" holds a control character`}},
	{name: "string too long", edits: []string{`alias = "router"`, `alias = "` + strings.Repeat("r", 5000) + `"`},
		at: "22:1", key: "router.alias", msg: []string{"this string is 5000 bytes; no gatewayd setting takes more than 4096"}},
	{name: "string too long in an array", edits: []string{`allow = ["dns"]`, `allow = ["dns", "` + strings.Repeat("w", 5000) + `"]`},
		at: "52:17", key: "zone.lab.allow[1]", msg: []string{"this string is 5000 bytes"}},
	{name: "loopback alias", edits: addAlias("x", "127.0.0.2/8"),
		at: "23:1", key: "alias[4].address", msg: []string{"127.0.0.2 is a loopback address (127.0.0.0/8), which never leaves the box; an alias needs a unicast address"}},
	{name: "multicast alias", edits: addAlias("x", "239.1.1.1/24"),
		at: "23:1", key: "alias[4].address", msg: []string{"239.1.1.1 is a multicast address (224.0.0.0/4)"}},
	{name: "link-local alias", edits: addAlias("x", "169.254.0.1/16"),
		at: "23:1", key: "alias[4].address", msg: []string{"169.254.0.1 is a link-local address (169.254.0.0/16), which routers do not forward"}},
	{name: "unspecified alias", edits: addAlias("x", "0.0.0.0/32"),
		at: "23:1", key: "alias[4].address", msg: []string{"0.0.0.0 is the unspecified address"}},
	{name: "limited broadcast alias", edits: addAlias("x", "255.255.255.255/32"),
		at: "23:1", key: "alias[4].address", msg: []string{"255.255.255.255 is the limited broadcast address"}},
	{name: "relayed subnet in multicast", edits: afterPool1("\n[[dhcp.pool]]\nrange = \"224.0.1.10-224.0.1.20\"\nsubnet = \"224.0.1.0/24\"\n"),
		at: "39:1", key: "dhcp.pool[2].subnet", msg: []string{"subnet 224.0.1.0/24 holds a multicast address (224.0.0.0/4); a relayed subnet is unicast addresses"}},
	{name: "pool dns loopback", edits: []string{`dns = ["dns"]`, `dns = ["dns", "127.0.0.53"]`},
		at: "31:15", key: "dhcp.pool[0].dns[1]", msg: []string{"127.0.0.53 is a loopback address (127.0.0.0/8), which never leaves the box; clients cannot use it as a server"}},
	{name: "pool dns too many", edits: []string{`dns = ["dns"]`, `dns = [` + strings.Repeat(`"dns", `, 64) + `]`},
		at: "31:" + strconv.Itoa(8+7*63), key: "dhcp.pool[0].dns[63]", msg: []string{"more than 63 addresses; the option holds at most 63"}},
	{name: "pool domain", edits: afterPool1("domain = \"lab..example\"\n"),
		at: "36:1", key: "dhcp.pool[1].domain", msg: []string{`"lab..example" is not a valid domain name`}},
	{name: "option set twice", edits: afterPool1("\n[[dhcp.pool.option]]\ncode = 66\ntext = \"a\"\n\n[[dhcp.pool.option]]\ncode = 66\ntext = \"b\"\n"),
		at: "42:1", key: "dhcp.pool[1].option[1].code", msg: []string{"option 66 is already set on line 38; one [[dhcp.pool.option]] per code"}},
	{name: "option ip IPv6", edits: afterPool1("\n[[dhcp.pool.option]]\ncode = 150\nip = [\"10.0.0.5\", \"2001:db8::1\"]\n"),
		at: "39:19", key: "dhcp.pool[1].option[0].ip[1]", msg: []string{"2001:db8::1 is not IPv4; DHCPv4 options carry IPv4 addresses"}},
	{name: "option ip too many", edits: afterPool1("\n[[dhcp.pool.option]]\ncode = 150\nip = [" + strings.Repeat("\"10.0.0.5\", ", 64) + "]\n"),
		at: "39:" + strconv.Itoa(7+12*63), key: "dhcp.pool[1].option[0].ip[63]", msg: []string{"more than 63 addresses; an option holds at most 63"}},
	{name: "classless routes too long", edits: afterPool1(strings.Repeat("\n[[dhcp.pool.route]]\nto = \"172.16.0.0/24\"\nvia = \"10.0.0.9\"\n", 32)),
		at: "161:1", key: "dhcp.pool[1].route[31]", msg: []string{"the classless routes (option 121) pass 255 bytes with this one"}},
	{name: "client id too long", edits: afterStatic("client_id = \"" + strings.Repeat("x", 256) + "\"\n"),
		at: "40:1", key: "dhcp.static[0].client_id", msg: []string{"client_id is 256 bytes; option 61 holds at most 255"}},
	{name: "upstream unspecified", edits: []string{`upstreams = ["192.168.1.254"]`, `upstreams = ["192.168.1.254", "0.0.0.0"]`},
		at: "43:31", key: "dns.upstreams[1]", msg: []string{"0.0.0.0 cannot be a DNS server: it is the unspecified address"}},
	{name: "upstream port zero", edits: []string{`upstreams = ["192.168.1.254"]`, `upstreams = ["192.168.1.254:0"]`},
		at: "43:14", key: "dns.upstreams[0]", msg: []string{`"192.168.1.254:0" names port 0; leave the port out for 53`}},
}

func TestLimits(t *testing.T) { runErrCases(t, limitCases) }

// The bounds leave room: a loopback upstream, the widest values, zeros that
// mean off.
func TestLimitsAccept(t *testing.T) {
	c := mustParse(t, edit(t, baseDoc,
		`upstreams = ["192.168.1.254"]`, `upstreams = ["127.0.0.1:5353", "169.254.169.253"]`+"\nmax_inflight = 65536\ntimeout = \"1m\"\n\n[dns.cache]\nmin_ttl = \"0s\"\nserve_stale = \"0s\"\nmax_ttl = \"7d\"\nsize = 1000000",
		"alias = \"dhcp\"\n", "alias = \"dhcp\"\nlease_time = \"365d\"\noffer_time = \"1h\"\n",
		"host = \"gw1\"\n", "host = \""+strings.Repeat("g", 64)+"\"\nprobe_timeout = \"0s\"\n"))
	if c.DNS.MaxFlight != 65536 || c.DNS.Cache.Size != 1000000 || c.DHCP.LeaseTime != maxLeaseTime || c.Gateway.ProbeTimeout != 0 {
		t.Errorf("bounds not kept: %+v %+v", c.DNS, c.DHCP)
	}
}
