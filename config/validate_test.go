package config

import "testing"

// One case per semantic check: the problem is reported once, at the key (or
// array element) it is about, with what would be valid.

var aliasCases = []errCase{
	{name: "duplicate name", edits: addAlias("dns", "192.168.1.4/24"),
		at: "22:1", key: "alias[4].name", msg: []string{`alias "dns" is defined twice (first on line 14)`, "names must be unique"}},
	{name: "duplicate address", edits: addAlias("extra", "192.168.1.3/24"),
		at: "23:1", key: "alias[4].address", msg: []string{`address 192.168.1.3 is also used by alias "dns" (line 15)`, "its own address"}},
	{name: "duplicate address with another prefix", edits: addAlias("extra", "10.0.0.1/16"),
		at: "23:1", key: "alias[4].address", msg: []string{`address 10.0.0.1 is also used by alias "lab" (line 19)`}},
	{name: "wider subnet overlaps three aliases", edits: addAlias("wide", "192.168.1.5/16"),
		at: "23:1", key: "alias[4].address", msg: []string{`subnet 192.168.0.0/16 overlaps 192.168.1.0/24 of alias "router" (line 7)`, "must use the same prefix length"}},
	{name: "narrower subnet inside another", edits: addAlias("half", "10.0.0.30/25"),
		at: "23:1", key: "alias[4].address", msg: []string{`subnet 10.0.0.0/25 overlaps 10.0.0.0/24 of alias "lab" (line 19)`}},
	{name: "network address", edits: []string{`"192.168.1.2/24"`, `"192.168.1.0/24"`},
		at: "11:1", key: "alias[1].address", msg: []string{"192.168.1.0 is the network or broadcast address of 192.168.1.0/24", "pick a host address"}},
	{name: "broadcast address", edits: []string{`"192.168.1.2/24"`, `"192.168.1.255/24"`},
		at: "11:1", key: "alias[1].address", msg: []string{"192.168.1.255 is the network or broadcast address"}},
	{name: "IPv6 address", edits: []string{`"192.168.1.2/24"`, `"2001:db8::2/64"`},
		at: "11:1", key: "alias[1].address", msg: []string{"2001:db8::2/64 is not IPv4"}},
	{name: "missing name", edits: []string{"[router]\n", "[[alias]]\naddress = \"192.168.1.9/24\"\n\n[router]\n"},
		at: "21:1", key: "alias[4]", msg: []string{"name is missing", `name such as "dns"`}},
	{name: "missing address", edits: []string{"[router]\n", "[[alias]]\nname = \"spare\"\n\n[router]\n"},
		at: "21:1", key: "alias[4]", msg: []string{"address is missing", `address = "192.168.1.2/24"`}},
	{name: "invalid name", edits: addAlias("Web", "192.168.1.9/24"),
		at: "22:1", key: "alias[4].name", msg: []string{`"Web" is not a valid name`, "lowercase letters, digits"}},
	{name: "explicit label too long", edits: []string{`address = "192.168.1.2/24"` + "\n", `address = "192.168.1.2/24"` + "\nlabel = \"eth1:dhcp-server\"\n"},
		at: "12:1", key: "alias[1].label", msg: []string{`label "eth1:dhcp-server" is 16 bytes`, "at most 15"}},
	// Every alias gets a 16-byte default label; each is reported at its [[alias]].
	{name: "default label too long", edits: []string{`interface = "eth1"`, `interface = "enp0s20f0u10u2"`}, count: 4,
		at: "5:1", key: "alias[0].label", msg: []string{`default label "enp0s20f0u10u2:0" (interface:index) is 16 bytes`, "at most 15", "set label"}},
	{name: "duplicate label", edits: []string{`address = "192.168.1.2/24"` + "\n", `address = "192.168.1.2/24"` + "\nlabel = \"eth1:2\"\n"},
		at: "14:1", key: "alias[2].label", msg: []string{`label "eth1:2" is also used by alias "dhcp"`, "must be unique"}},
	{name: "label not on the interface", edits: []string{`address = "192.168.1.2/24"` + "\n", `address = "192.168.1.2/24"` + "\nlabel = \"lan0\"\n"},
		at: "12:1", key: "alias[1].label", msg: []string{`label "lan0" must start with the interface name, e.g. "eth1:1"`}},
	// removable never takes away a subnet's first address labelled with the
	// bare interface name: such an alias could never be moved or removed.
	{name: "label is the bare interface name", edits: []string{`address = "192.168.1.2/24"` + "\n", `address = "192.168.1.2/24"` + "\nlabel = \"eth1\"\n"},
		at: "12:1", key: "alias[1].label", msg: []string{`label "eth1": label must be eth1:<something>, e.g. eth1:1; the bare interface name is the NIC's own address`}},
}

func TestAliasChecks(t *testing.T) { runErrCases(t, aliasCases) }

var roleCases = []errCase{
	{name: "nonexistent alias", edits: []string{`alias = "router"`, `alias = "gateway"`},
		at: "22:1", key: "router.alias", msg: []string{`alias "gateway" does not exist; defined aliases: dhcp, dns, lab, router`}},
	{name: "two roles on one alias", edits: []string{`alias = "dns"`, `alias = "dhcp"`},
		at: "42:1", key: "dns.alias", msg: []string{`alias "dhcp" already carries the dhcp role`, "add an [[alias]] for dns"}},
	{name: "missing alias", edits: []string{"[dns]\nalias = \"dns\"\n", "[dns]\n"},
		at: "41:1", key: "dns", msg: []string{"alias is missing", "for the dns role"}},
	{name: "upstream off-link", edits: []string{`upstream = "192.168.1.254"`, `upstream = "172.16.0.1"`},
		at: "23:1", key: "router.upstream", msg: []string{"upstream 172.16.0.1 is not on any alias subnet", "directly reachable on eth1"}},
	{name: "route via off-link", edits: []string{`upstream = "192.168.1.254"` + "\n", `upstream = "192.168.1.254"` + "\n\n[[router.route]]\nto = \"172.16.0.0/16\"\nvia = \"10.9.9.9\"\n"},
		at: "27:1", key: "router.route[0].via", msg: []string{"next hop 10.9.9.9 is not on any alias subnet", "directly reachable on eth1"}},
	{name: "route with host bits", edits: []string{`upstream = "192.168.1.254"` + "\n", `upstream = "192.168.1.254"` + "\n\n[[router.route]]\nto = \"172.16.0.1/16\"\nvia = \"192.168.1.250\"\n"},
		at: "26:1", key: "router.route[0].to", msg: []string{"172.16.0.1/16 has host bits set; did you mean 172.16.0.0/16?"}},
}

func TestRoleChecks(t *testing.T) { runErrCases(t, roleCases) }

// Lines of baseDoc the DHCP and zone cases edit.
const (
	pool0      = `range = "192.168.1.100-192.168.1.199"`
	pool1      = `range = "10.0.0.100-10.0.0.199"`
	labSubnets = `subnets = ["10.0.0.0/24"]`
)

// afterPool1 is an edit adding text after the last line of the second pool.
func afterPool1(text string) []string {
	return []string{"router = \"lab\"\n", "router = \"lab\"\n" + text}
}

// afterStatic is an edit adding text after the last line of the static lease.
func afterStatic(text string) []string {
	return []string{"address = \"192.168.1.10\"\n", "address = \"192.168.1.10\"\n" + text}
}

var dhcpCases = []errCase{
	{name: "range leaves its subnet", edits: []string{pool0, `range = "192.168.1.100-192.168.2.10"`},
		at: "29:1", key: "dhcp.pool[0].range", msg: []string{"range 192.168.1.100-192.168.2.10 is outside its subnet 192.168.1.0/24"}},
	{name: "range outside explicit subnet", edits: []string{pool1, pool1 + "\nsubnet = \"10.0.1.0/24\"", `router = "lab"`, `router = "10.0.1.1"`},
		at: "34:1", key: "dhcp.pool[1].range", msg: []string{"range 10.0.0.100-10.0.0.199 is outside its subnet 10.0.1.0/24"}},
	{name: "IPv6 pool subnet", edits: []string{pool1, pool1 + "\nsubnet = \"2001:db8::/64\""},
		at: "35:1", key: "dhcp.pool[1].subnet", msg: []string{`subnet 2001:db8::/64 is not IPv4`}},
	{name: "range on no alias subnet", edits: []string{pool1, `range = "10.9.0.100-10.9.0.199"`},
		at: "34:1", key: "dhcp.pool[1].range", msg: []string{"range 10.9.0.100-10.9.0.199 is not inside any alias subnet", `add subnet = "a.b.c.0/24" if it is reached through a DHCP relay`}},
	{name: "range includes the network address", edits: []string{`"10.0.0.1/24"`, `"10.0.0.254/24"`, pool1, `range = "10.0.0.0-10.0.0.99"`},
		at: "34:1", key: "dhcp.pool[1].range", msg: []string{"range 10.0.0.0-10.0.0.99 includes the network or broadcast address of 10.0.0.0/24"}},
	{name: "range includes the broadcast address", edits: []string{pool0, `range = "192.168.1.200-192.168.1.255"`},
		at: "29:1", key: "dhcp.pool[0].range", msg: []string{"includes the network or broadcast address of 192.168.1.0/24"}},
	{name: "range includes an alias address", edits: []string{pool0, `range = "192.168.1.3-192.168.1.99"`},
		at: "29:1", key: "dhcp.pool[0].range", msg: []string{`range 192.168.1.3-192.168.1.99 includes 192.168.1.3, the address of alias "dns"`}},
	{name: "ranges overlap", edits: afterPool1("\n[[dhcp.pool]]\nrange = \"192.168.1.150-192.168.1.160\"\n"),
		at: "38:1", key: "dhcp.pool[2].range", msg: []string{"range 192.168.1.150-192.168.1.160 overlaps range 192.168.1.100-192.168.1.199 of dhcp.pool[0] (line 29)", "must not share addresses"}},
	{name: "pool router unknown", edits: []string{`router = "lab"`, `router = "gw"`},
		at: "35:1", key: "dhcp.pool[1].router", msg: []string{`"gw" is neither an alias name (dhcp, dns, lab, router) nor an IPv4 address`}},
	{name: "pool router off the pool subnet", edits: []string{`router = "lab"`, `router = "router"`},
		at: "35:1", key: "dhcp.pool[1].router", msg: []string{"router 192.168.1.1 is not on the pool's subnet 10.0.0.0/24", "clients could not reach it"}},
	{name: "pool dns unknown", edits: []string{`dns = ["dns"]`, `dns = ["dns", "resolver"]`},
		at: "31:15", key: "dhcp.pool[0].dns[1]", msg: []string{`"resolver" is neither an alias name`}},
	{name: "pool broadcast outside subnet", edits: afterPool1("broadcast = \"10.0.1.255\"\n"),
		at: "36:1", key: "dhcp.pool[1].broadcast", msg: []string{"broadcast 10.0.1.255 is outside the subnet 10.0.0.0/24"}},
	{name: "pool times out of order", edits: afterPool1("renew_time = \"11h\"\nrebind_time = \"10h\"\n"),
		at: "33:1", key: "dhcp.pool[1]", msg: []string{"times must satisfy renew_time (11h0m0s) < rebind_time (10h0m0s) < lease_time (12h0m0s)"}},
	{name: "option code reserved", edits: afterPool1("\n[[dhcp.pool.option]]\ncode = 54\nip = [\"10.0.0.1\"]\n"),
		at: "38:1", key: "dhcp.pool[1].option[0].code", msg: []string{"option 54 (server identifier) is set by gatewayd itself"}},
	{name: "option code with its own key", edits: afterPool1("\n[[dhcp.pool.option]]\ncode = 42\nip = [\"10.0.0.1\"]\n"),
		at: "38:1", key: "dhcp.pool[1].option[0].code", msg: []string{"option 42 has its own key in [[dhcp.pool]]: use ntp instead"}},
	{name: "dns service without the dns role", edits: []string{"[dns]\nalias = \"dns\"\nupstreams = [\"192.168.1.254\"]\n", "", `dns = ["dns"]`, `dns = ["192.168.1.3"]`, `allow = ["dhcp", "dns", "ssh"]`, `allow = ["dhcp", "ssh"]`},
		at: "49:10", key: "zone.lab.allow[0]", msg: []string{`service "dns" needs the [dns] role, which this file does not configure`}},
	{name: "option code out of range", edits: afterPool1("\n[[dhcp.pool.option]]\ncode = 255\ntext = \"x\"\n"),
		at: "38:1", key: "dhcp.pool[1].option[0].code", msg: []string{"option code 255 is outside 1-254"}},
	{name: "option with two values", edits: afterPool1("\n[[dhcp.pool.option]]\ncode = 66\ntext = \"tftp\"\nip = [\"10.0.0.1\"]\n"),
		at: "37:1", key: "dhcp.pool[1].option[0]", msg: []string{`exactly one of hex = "0a0b", text = "..." or ip = ["a.b.c.d"]`}},
	{name: "option hex invalid", edits: afterPool1("\n[[dhcp.pool.option]]\ncode = 43\nhex = \"xyz\"\n"),
		at: "39:1", key: "dhcp.pool[1].option[0].hex", msg: []string{`"xyz" is not hex bytes`}},
	{name: "static outside every pool subnet", edits: []string{`address = "192.168.1.10"`, `address = "172.16.0.10"`},
		at: "39:1", key: "dhcp.static[0].address", msg: []string{"172.16.0.10 is outside every pool's subnet", "a subnet a [[dhcp.pool]] serves"}},
	{name: "static on an alias address", edits: []string{`address = "192.168.1.10"`, `address = "192.168.1.3"`},
		at: "39:1", key: "dhcp.static[0].address", msg: []string{`192.168.1.3 is the address of alias "dns"`}},
	{name: "static on the broadcast address", edits: []string{`address = "192.168.1.10"`, `address = "192.168.1.255"`},
		at: "39:1", key: "dhcp.static[0].address", msg: []string{"192.168.1.255 is the network or broadcast address of 192.168.1.0/24"}},
	{name: "duplicate MAC", edits: afterStatic("\n[[dhcp.static]]\nmac = \"00:0D:61:0B:D9:A0\"\naddress = \"192.168.1.11\"\n"),
		at: "42:1", key: "dhcp.static[1].mac", msg: []string{"MAC 00:0d:61:0b:d9:a0 already has a static lease (line 38)", "one static lease per MAC"}},
	{name: "duplicate static address", edits: afterStatic("\n[[dhcp.static]]\nmac = \"00:0d:61:0b:d9:a1\"\naddress = \"192.168.1.10\"\n"),
		at: "43:1", key: "dhcp.static[1].address", msg: []string{"192.168.1.10 is already the static lease of another client (line 39)"}},
	{name: "duplicate client id", edits: afterStatic("client_id = \"01:02\"\n\n[[dhcp.static]]\nclient_id = \"01:02\"\naddress = \"192.168.1.11\"\n"),
		at: "43:1", key: "dhcp.static[1].client_id", msg: []string{`client_id "01:02" already has a static lease (line 40)`}},
	{name: "static without mac or client id", edits: []string{"mac = \"00:0d:61:0b:d9:a0\"\n", ""},
		at: "37:1", key: "dhcp.static[0]", msg: []string{`a static lease needs mac = "00:11:22:33:44:55" or client_id`}},
	{name: "static host name", edits: afterStatic("hostname = \"my_printer\"\n"),
		at: "40:1", key: "dhcp.static[0].hostname", msg: []string{`"my_printer" is not a valid host name`, "letters, digits and '-'"}},
}

func TestDHCPChecks(t *testing.T) { runErrCases(t, dhcpCases) }

var zoneCases = []errCase{
	// Overlaps are reported at the subnet written later in the file.
	{name: "subnets overlap across zones", edits: []string{labSubnets, `subnets = ["10.0.0.0/24", "192.168.1.128/25"]`},
		at: "51:27", key: "zone.lab.subnets[1]", msg: []string{`subnet 192.168.1.128/25 overlaps 192.168.1.0/24 of zone "lan" (line 46)`, "a subnet belongs to one zone"}},
	{name: "subnets overlap across zones, later zone sorts first", edits: []string{"", "\n[zone.dmz]\nsubnets = [\"192.168.1.0/25\"]\n"},
		at: "56:12", key: "zone.dmz.subnets[0]", msg: []string{`subnet 192.168.1.0/25 overlaps 192.168.1.0/24 of zone "lan" (line 46)`}},
	{name: "subnets overlap within one zone", edits: []string{labSubnets, `subnets = ["10.0.0.0/24", "10.0.0.0/25"]`},
		at: "51:27", key: "zone.lab.subnets[1]", msg: []string{"subnet 10.0.0.0/25 overlaps 10.0.0.0/24 (line 51) in the same zone", "list the wider one only"}},
	{name: "subnet listed twice", edits: []string{labSubnets, `subnets = ["10.0.0.0/24", "10.0.0.0/24"]`},
		at: "51:27", key: "zone.lab.subnets[1]", msg: []string{"subnet 10.0.0.0/24 is listed twice"}},
	{name: "subnet with host bits", edits: []string{labSubnets, `subnets = ["10.0.0.1/24"]`},
		at: "51:12", key: "zone.lab.subnets[0]", msg: []string{"10.0.0.1/24 has host bits set; did you mean 10.0.0.0/24?"}},
	{name: "IPv6 subnet", edits: []string{labSubnets, `subnets = ["10.0.0.0/24", "2001:db8::/64"]`},
		at: "51:27", key: "zone.lab.subnets[1]", msg: []string{"2001:db8::/64 is not an IPv4 subnet"}},
	{name: "unknown service", edits: []string{`allow = ["dns"]`, `allow = ["dns", "www"]`},
		at: "52:17", key: "zone.lab.allow[1]", msg: []string{`unknown service "www"; known services: dhcp, dns, ping, ssh (define others under [service.<name>])`}},
	{name: "unknown service in a multi-line array", edits: []string{`allow = ["dns"]`, "allow = [\n  \"dns\", # resolver\n  # the next one is wrong\n  \"www\",\n]"},
		at: "55:3", key: "zone.lab.allow[1]", msg: []string{`unknown service "www"`}},
	{name: "unknown service in literal strings", edits: []string{`allow = ["dns"]`, `allow = ['dns', 'www']`},
		at: "52:17", key: "zone.lab.allow[1]", msg: []string{`unknown service "www"`}},
	{name: "forward to unknown zone", edits: []string{`forward = ["upstream"]`, `forward = ["upstream", "dmz"]`},
		at: "53:24", key: "zone.lab.forward[1]", msg: []string{`unknown zone "dmz"; forward names zones (lab, lan) or "upstream"`}},
	{name: "zone named upstream", edits: []string{"", "\n[zone.upstream]\nsubnets = [\"172.16.0.0/16\"]\n"},
		at: "55:1", key: "zone.upstream", msg: []string{`"upstream" is not a valid zone name`, `and not "upstream"`}},
	// The metrics and the status count what no zone claims as "closed" and
	// the link's own traffic as "link": a zone of either name would be
	// counted twice under one label.
	{name: "zone named closed", edits: []string{"", "\n[zone.closed]\nsubnets = [\"172.16.0.0/16\"]\n"},
		at: "55:1", key: "zone.closed", msg: []string{`"closed" is not a valid zone name`, `not "upstream", "closed" or "link"`}},
	{name: "zone named link", edits: []string{"", "\n[zone.link]\nsubnets = [\"172.16.0.0/16\"]\n"},
		at: "55:1", key: "zone.link", msg: []string{`"link" is not a valid zone name`}},
}

func TestZoneChecks(t *testing.T) { runErrCases(t, zoneCases) }

var serviceCases = []errCase{
	{name: "port zero", edits: []string{"", "\n[service.web]\nports = [\"tcp/80\", \"tcp/0\"]\n"},
		at: "56:20", key: "service.web.ports[1]", msg: []string{`invalid port "tcp/0": ports are 1-65535, low-high`}},
	{name: "reversed range", edits: []string{"", "\n[service.web]\nports = [\"tcp/90-80\"]\n"},
		at: "56:10", key: "service.web.ports[0]", msg: []string{`invalid port "tcp/90-80"`}},
	{name: "unknown protocol", edits: []string{"", "\n[service.web]\nports = [\"sctp/9\"]\n"},
		at: "56:10", key: "service.web.ports[0]", msg: []string{`invalid port "sctp/9": want "tcp/22", "udp/53", "tcp/8000-8080" or "icmp"`}},
	{name: "bad port in a multi-line array", edits: []string{"", "\n[service.web]\nports = [\n  \"tcp/80\",\n  \"udp/0\", # oops\n]\n"},
		at: "58:3", key: "service.web.ports[1]", msg: []string{`invalid port "udp/0"`}},
	{name: "missing ports", edits: []string{"", "\n[service.web]\nalias = \"router\"\n"},
		at: "55:1", key: "service.web", msg: []string{`ports is missing: set ports = ["tcp/8080"]`}},
	{name: "unknown alias", edits: []string{"", "\n[service.web]\nports = [\"tcp/80\"]\nalias = \"www\"\n"},
		at: "57:1", key: "service.web.alias", msg: []string{`alias "www" does not exist; defined aliases: dhcp, dns, lab, router`}},
}

func TestServiceChecks(t *testing.T) { runErrCases(t, serviceCases) }

var gatewayDNSCases = []errCase{
	{name: "missing interface", edits: []string{"interface = \"eth1\"\n", ""},
		at: "1:1", key: "gateway", msg: []string{`interface is missing: set [gateway] interface = "eth1"`}},
	{name: "interface with a colon", edits: []string{`interface = "eth1"`, `interface = "eth1:0"`},
		at: "2:1", key: "gateway.interface", msg: []string{`"eth1:0" is not an interface name (at most 15 bytes, no '/', ':' or spaces)`}},
	{name: "announce count", edits: []string{"host = \"gw1\"\n", "host = \"gw1\"\nannounce_count = 500\n"},
		at: "4:1", key: "gateway.announce_count", msg: []string{"announce_count must be 0-100, not 500"}},
	{name: "log level", edits: []string{"host = \"gw1\"\n", "host = \"gw1\"\nlog_level = \"verbose\"\n"},
		at: "4:1", key: "gateway.log_level", msg: []string{`log_level "verbose" is not a level: use debug, info, warn or error`}},
	{name: "log format", edits: []string{"host = \"gw1\"\n", "host = \"gw1\"\nlog_format = \"logfmt\"\n"},
		at: "4:1", key: "gateway.log_format", msg: []string{`log_format "logfmt" is not a format: use text or json`}},
	{name: "relative state dir", edits: []string{"host = \"gw1\"\n", "host = \"gw1\"\nstate_dir = \"var/lib/gatewayd\"\n"},
		at: "4:1", key: "gateway.state_dir", msg: []string{`state_dir "var/lib/gatewayd" is not an absolute path`}},
	{name: "relative control socket", edits: []string{"host = \"gw1\"\n", "host = \"gw1\"\ncontrol_socket = \"control.sock\"\n"},
		at: "4:1", key: "gateway.control_socket", msg: []string{`control_socket "control.sock" is not an absolute path`}},
	{name: "dns domain", edits: []string{`alias = "dns"`, `alias = "dns"` + "\ndomain = \"home..arpa\""},
		at: "43:1", key: "dns.domain", msg: []string{`"home..arpa" is not a valid domain name`, `e.g. "home.arpa"`}},
	{name: "dns upstream not an address", edits: []string{`upstreams = ["192.168.1.254"]`, `upstreams = ["192.168.1.254", "dns.google"]`},
		at: "43:31", key: "dns.upstreams[1]", msg: []string{`"dns.google" is not an address or address:port`, `e.g. "192.168.1.254" or "192.168.1.254:5353"`}},
}

func TestGatewayAndDNSChecks(t *testing.T) { runErrCases(t, gatewayDNSCases) }
