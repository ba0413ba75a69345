package config

import (
	"strings"
	"testing"
)

var unknownKeyCases = []errCase{
	{name: "top level", edits: []string{"[gateway]\n", "colour = \"blue\"\n[gateway]\n"},
		at: "1:1", key: "colour", msg: []string{`unknown key "colour" at the top level; valid keys are: alias, dhcp, dns, gateway, router, service, upstream, zone`}},
	{name: "gateway", edits: []string{"host = \"gw1\"\n", "host = \"gw1\"\nhostname = \"gw1\"\n"},
		at: "4:1", key: "gateway.hostname", msg: []string{`unknown key "hostname" in [gateway]; valid keys are: announce_count, announce_interval, control_socket, host, interface, log_format, log_level, management, management_zones, metrics, probe_timeout, state_dir`}},
	// The second [[alias]], to check that the line is that alias's.
	{name: "second alias", edits: []string{"name = \"dhcp\"\n", "name = \"dhcp\"\nadress = \"192.168.1.2/24\"\n"},
		at: "11:1", key: "alias[1].adress", msg: []string{`unknown key "adress" in [[alias]]; valid keys are: address, adopt, host, label, name`}},
	{name: "last alias", edits: []string{"name = \"lab\"\n", "name = \"lab\"\nlable = \"eth1:lab\"\n"},
		at: "19:1", key: "alias[3].lable", msg: []string{`unknown key "lable"`}},
	{name: "second pool", edits: []string{"router = \"lab\"\n", "router = \"lab\"\nleasetime = \"1h\"\n"},
		at: "36:1", key: "dhcp.pool[1].leasetime", msg: []string{`unknown key "leasetime" in [[dhcp.pool]]; valid keys are: broadcast, dns, domain, lease_time, ntp, option, range, rebind_time, renew_time, route, router, subnet`}},
	{name: "zone", edits: []string{"forward = [\"upstream\"]\n", "forward = [\"upstream\"]\npolicy = \"drop\"\n"},
		at: "54:1", key: "zone.lab.policy", msg: []string{`unknown key "policy" in [zone.lab]; valid keys are: allow, forward, interfaces, subnets`}},
	{name: "dns cache", edits: []string{"", "\n[dns.cache]\nsize = 100\nmaxttl = \"1h\"\n"},
		at: "57:1", key: "dns.cache.maxttl", msg: []string{`unknown key "maxttl" in [dns.cache]; valid keys are: max_ttl, min_ttl, negative_ttl, serve_stale, size, stale_answer_after`}},
	{name: "dns cache inline", edits: []string{"alias = \"dns\"\n", "alias = \"dns\"\ncache = { size = 100, ttl = \"1h\" }\n"},
		at: "43:23", key: "dns.cache.ttl", msg: []string{`unknown key "ttl" in [dns.cache]`}},
	{name: "dotted key", edits: []string{"alias = \"dhcp\"\n", "alias = \"dhcp\"\nlease.time = \"1h\"\n"},
		at: "27:1", key: "dhcp.lease.time", msg: []string{`unknown key "lease" in [dhcp]; valid keys are: alias, authoritative`}},
	{name: "capitalised key", edits: []string{`interface = "eth1"`, `Interface = "eth1"`},
		at: "2:1", key: "gateway.Interface", msg: []string{`unknown key "Interface" in [gateway]: keys are lowercase, write "interface"`}},
	{name: "capitalised key in an inline table", edits: []string{"alias = \"dns\"\n", "alias = \"dns\"\ncache = { Size = 5 }\n"},
		at: "43:11", key: "dns.cache.Size", msg: []string{`unknown key "Size" in [dns.cache]: keys are lowercase, write "size"`}},
	// An unknown table is reported once, not once more for each key in it.
	{name: "unknown table", edits: []string{"", "\n[firewall]\ndefault = \"drop\"\nlog = true\n"},
		at: "55:1", key: "firewall", msg: []string{`unknown key "firewall" at the top level`}},
}

func TestUnknownKeys(t *testing.T) { runErrCases(t, unknownKeyCases) }

var syntaxCases = []errCase{
	{name: "unterminated string", edits: []string{`name = "dhcp"`, `name = "dhcp`},
		at: "10:13", key: "alias[1].name", msg: []string{"TOML syntax: strings cannot contain newlines"}},
	{name: "unterminated string at end of file", edits: []string{"", `extra = "x`},
		at: "54:10", key: "zone.lab.extra", msg: []string{"TOML syntax: unexpected EOF"}},
	{name: "bad table header", edits: []string{"[dns]", "[dns"},
		at: "41:5", key: "dns", msg: []string{"TOML syntax: expected '.' or ']' to end table name"}},
	{name: "space in table name", edits: []string{"[zone.lab]", "[zone.la b]"},
		at: "50:10", key: "zone.lab", msg: []string{"TOML syntax: expected '.' or ']' to end table name, but got 'b'"}},
	{name: "missing equals", edits: []string{`name = "dhcp"`, `name "dhcp"`},
		at: "10:6", msg: []string{"TOML syntax: expected '.' or '=', but got '\"' instead"}},
	{name: "bare word value", edits: []string{`name = "dhcp"`, `name = dhcp`},
		at: "10:8", key: "alias[1].name", msg: []string{`TOML syntax: expected value but found "dhcp" instead`}},
	{name: "unclosed array", edits: []string{`dns = ["dns"]`, "dns = [\"dns\""},
		at: "33:1", key: "dhcp.pool[1]", msg: []string{"TOML syntax: expected a comma (',') or array terminator (']')"}},
	{name: "key defined twice", edits: []string{"name = \"dhcp\"\n", "name = \"dhcp\"\nname = \"dhcp2\"\n"},
		at: "11:1", key: "alias[1].name", msg: []string{"TOML syntax: Key 'alias.name' has already been defined."}},
	{name: "array of tables over an array", edits: []string{"", "\n[[zone.lab.subnets]]\n"},
		at: "55:3", key: "zone.lab.subnets[0]", msg: []string{"TOML syntax: Key 'zone.lab.subnets' was already created and cannot be used as an array."}},
	{name: "table defined twice", edits: []string{"", "\n[router]\nmasquerade = true\n"},
		at: "55:2", key: "router", msg: []string{"TOML syntax: Key 'router' has already been defined."}},
}

func TestSyntaxErrors(t *testing.T) { runErrCases(t, syntaxCases) }

var typeCases = []errCase{
	{name: "string where an integer is expected", edits: []string{"host = \"gw1\"\n", "host = \"gw1\"\nannounce_count = \"3\"\n"},
		at: "4:1", key: "gateway.announce_count", msg: []string{"want a whole number, not a string"}},
	{name: "float where an integer is expected", edits: []string{"host = \"gw1\"\n", "host = \"gw1\"\nannounce_count = 2.5\n"},
		at: "4:1", key: "gateway.announce_count", msg: []string{"want a whole number, not a float"}},
	{name: "integer where a string is expected", edits: []string{`interface = "eth1"`, `interface = 1`},
		at: "2:1", key: "gateway.interface", msg: []string{"want a string in quotes, not an integer (1)"}},
	{name: "string where a boolean is expected", edits: []string{`upstream = "192.168.1.254"`, `upstream = "192.168.1.254"` + "\nmasquerade = \"yes\""},
		at: "24:1", key: "router.masquerade", msg: []string{"want true or false, not a string"}},
	{name: "bad IP", edits: []string{`upstream = "192.168.1.254"`, `upstream = "192.168.1.300"`},
		at: "23:1", key: "router.upstream", msg: []string{`"192.168.1.300" is not valid (IPv4 field has value >255): want an IPv4 address, e.g. "192.168.1.1"`}},
	// The library only knows "alias.address"; the error must name the second alias.
	{name: "bad prefix in the second alias", edits: []string{`address = "192.168.1.2/24"`, `address = "192.168.1.2"`},
		at: "11:1", key: "alias[1].address", msg: []string{`"192.168.1.2" is not valid (no '/'): want an IPv4 address with its prefix length, e.g. "192.168.1.2/24"`}},
	{name: "prefix length out of range", edits: []string{`address = "192.168.1.3/24"`, `address = "192.168.1.3/33"`},
		at: "15:1", key: "alias[2].address", msg: []string{`"192.168.1.3/33" is not valid (prefix length out of range)`}},
	{name: "bad duration", edits: []string{"alias = \"dhcp\"\n", "alias = \"dhcp\"\nlease_time = \"12 hours\"\n"},
		at: "27:1", key: "dhcp.lease_time", msg: []string{`invalid duration "12 hours": want e.g. "12h", "30m" or "2d"`}},
	{name: "bad duration in the second pool", edits: []string{"router = \"lab\"\n", "router = \"lab\"\nlease_time = \"1y\"\n"},
		at: "36:1", key: "dhcp.pool[1].lease_time", msg: []string{`invalid duration "1y"`}},
	{name: "negative duration", edits: []string{"alias = \"dhcp\"\n", "alias = \"dhcp\"\noffer_time = \"-1m\"\n"},
		at: "27:1", key: "dhcp.offer_time", msg: []string{`invalid duration "-1m"`}},
	{name: "duration of too many days", edits: []string{"alias = \"dhcp\"\n", "alias = \"dhcp\"\nlease_time = \"999999999d\"\n"},
		at: "27:1", key: "dhcp.lease_time", msg: []string{`invalid duration "999999999d"`}},
	{name: "bad MAC", edits: []string{`mac = "00:0d:61:0b:d9:a0"`, `mac = "00:0d:61:0b:d9"`},
		at: "38:1", key: "dhcp.static[0].mac", msg: []string{`invalid MAC address "00:0d:61:0b:d9": want six hex bytes like "00:0d:61:0b:d9:a0"`}},
	{name: "range without a dash", edits: []string{`range = "10.0.0.100-10.0.0.199"`, `range = "10.0.0.100"`},
		at: "34:1", key: "dhcp.pool[1].range", msg: []string{`invalid range "10.0.0.100": want "first-last", e.g. "192.168.1.100-192.168.1.199"`}},
	{name: "range backwards", edits: []string{`range = "10.0.0.100-10.0.0.199"`, `range = "10.0.0.199-10.0.0.100"`},
		at: "34:1", key: "dhcp.pool[1].range", msg: []string{`invalid range "10.0.0.199-10.0.0.100": the first address is after the last`}},
	{name: "IPv6 range", edits: []string{`range = "10.0.0.100-10.0.0.199"`, `range = "2001:db8::1-2001:db8::9"`},
		at: "34:1", key: "dhcp.pool[1].range", msg: []string{"both ends must be IPv4 addresses"}},
	{name: "array where a string is expected", edits: []string{`router = "lab"`, `router = ["lab"]`},
		at: "35:1", key: "dhcp.pool[1].router", msg: []string{"want a string in quotes, not an array"}},
	{name: "string where an array is expected", edits: []string{`dns = ["dns"]`, `dns = "dns"`},
		at: "31:1", key: "dhcp.pool[0].dns", msg: []string{`want an array of strings, e.g. ["dns"], not a string`}},
	{name: "value where a table is expected", edits: []string{"alias = \"dns\"\n", "alias = \"dns\"\ncache = 5\n"},
		at: "43:1", key: "dns.cache", msg: []string{"want a table, not an integer (5)"}},
	{name: "bad array element", edits: []string{`upstreams = ["192.168.1.254"]`, `upstreams = ["192.168.1.254", 53]`},
		at: "43:31", key: "dns.upstreams[1]", msg: []string{"want a string in quotes, not an integer (53)"}},
	{name: "bad element of a multi-line array", edits: []string{`subnets = ["10.0.0.0/24"]`, "subnets = [\n  \"10.0.0.0/24\", # lab\n  \"10.1.0.0/40\",\n]"},
		at: "53:3", key: "zone.lab.subnets[1]", msg: []string{`"10.1.0.0/40" is not valid (prefix length out of range): want an IPv4 address with its prefix length`}},
	{name: "bad element among literal strings", edits: []string{`subnets = ["10.0.0.0/24"]`, `subnets = ['10.0.0.0/24', '10.1.0.0']`},
		at: "51:27", key: "zone.lab.subnets[1]", msg: []string{`"10.1.0.0" is not valid (no '/')`}},
}

func TestTypeErrors(t *testing.T) { runErrCases(t, typeCases) }

// TestErrorsName checks the ErrorList contract: every problem names the file and
// a line:column, and the list reads one problem a line.
func TestErrorsName(t *testing.T) {
	text := edit(t, baseDoc, `upstream = "192.168.1.254"`, `upstream = "172.16.0.1"`, `allow = ["dns"]`, `allow = ["dns", "www"]`)
	_, err := Parse("/etc/gatewayd/gateway.toml", []byte(text))
	if err == nil {
		t.Fatal("accepted")
	}
	want := "/etc/gatewayd/gateway.toml:23:1: router.upstream: upstream 172.16.0.1 is not on any alias subnet; the next hop must be directly reachable on eth1\n" +
		`/etc/gatewayd/gateway.toml:52:17: zone.lab.allow[1]: unknown service "www"; known services: dhcp, dns, ping, ssh (define others under [service.<name>])`
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	_, err = Parse("", []byte("[gateway\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "<config>:1:9: ") {
		t.Errorf("in-memory source: got %v, want it to start with <config>:1:9:", err)
	}
	_, err = Parse("bom.toml", []byte("\ufeff[gateway] x\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bom.toml:1:10: gateway: ") {
		t.Errorf("after a byte order mark: got %v, want bom.toml:1:10: gateway: ...", err)
	}
	_, err = Parse("bom.toml", []byte("\ufeff[gateway]\ninterface = 5\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bom.toml:2:1: gateway.interface: ") {
		t.Errorf("after a byte order mark: got %v, want bom.toml:2:1: gateway.interface: ...", err)
	}
	// The first byte that is not UTF-8 is placed exactly.
	_, err = Parse("bad.toml", []byte("a = 1\n# caf\xc3\xa9 ok\nb = \"\xff\"\n"))
	if want := "bad.toml:3:6: the file is not valid UTF-8 text: byte 0xff here is not part of a UTF-8 character; save the file as UTF-8"; err == nil || err.Error() != want {
		t.Errorf("invalid UTF-8: got %v, want %s", err, want)
	}
}
