package config

import (
	"fmt"
	"slices"
	"testing"
)

// Problems inside values written inline are placed at the key or element
// they are about, not at the line's first key.
var inlineCases = []errCase{
	{name: "route in an inline array of tables", edits: []string{`upstream = "192.168.1.254"`, `upstream = "192.168.1.254"` + "\nroute = [{to = \"172.16.0.0/16\", via = \"192.168.1.250\"}, {to = \"172.17.0.0/16\", via = \"10.9.9.9\"}]"},
		at: "24:80", key: "router.route[1].via", msg: []string{"next hop 10.9.9.9 is not on any alias subnet"}},
	{name: "element of an array in an inline table", edits: afterDNS("forward = [{domain = \"corp.example\", servers = [\"10.0.0.53\", \"bad\"]}]\n"),
		at: "44:62", key: "dns.forward[0].servers[1]", msg: []string{`"bad" is not an address or address:port`}},
	{name: "key of an inline table", edits: afterDNS("cache = {min_ttl = \"1s\", size = -1}\n"),
		at: "44:26", key: "dns.cache.size", msg: []string{"cache size must be 0 or more"}},
	{name: "dotted key in an inline table", edits: afterDNS("x = 1\n"), count: 1,
		at: "44:1", key: "dns.x", msg: []string{`unknown key "x" in [dns]`}},
	{name: "inline table across lines", edits: afterDNS("cache = {\n  min_ttl = \"1s\",\n  size = -1,\n}\n"),
		at: "46:3", key: "dns.cache.size", msg: []string{"cache size must be 0 or more"}},
}

func TestInlinePlaces(t *testing.T) { runErrCases(t, inlineCases) }

func TestInlineTypeError(t *testing.T) {
	_, err := parse("alias = [{name = \"a\", address = \"10.0.0.1/24\"}, {name = \"b\", address = \"bad\"}]\n[gateway]\ninterface = \"eth1\"\n")
	want := `t.toml:1:62: alias[1].address: "bad" is not valid (no '/'): want an IPv4 address with its prefix length, e.g. "192.168.1.2/24"`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

// The library words these in TOML's terms; the error says what to write.
var hintCases = []errCase{
	{name: "address without quotes", edits: []string{`address = "192.168.1.2/24"`, `address = 192.168.1.2/24`},
		at: "11:11", key: "alias[1].address", msg: []string{`TOML syntax: Invalid float value: "192.168.1.2"; addresses are strings: write it in quotes, "192.168.1.2/24"`}},
	{name: "array element without quotes", edits: []string{`upstreams = ["192.168.1.254"]`, `upstreams = ["192.168.1.254", 10.0.0.1:5353]`},
		at: "43:31", key: "dns.upstreams", msg: []string{`write it in quotes, "10.0.0.1:5353"`}},
	{name: "MAC without quotes", edits: []string{`mac = "00:0d:61:0b:d9:a0"`, `mac = 00:0d:61:0b:d9:a0`},
		at: "38:7", key: "dhcp.static[0].mac", msg: []string{`write it in quotes, "00:0d:61:0b:d9:a0"`}},
	{name: "range without quotes", edits: []string{pool1, `range = 10.0.0.100-10.0.0.199`},
		at: "34:9", key: "dhcp.pool[1].range", msg: []string{`write it in quotes, "10.0.0.100-10.0.0.199"`}},
	{name: "one bracket for a list of tables", edits: []string{"[[dhcp.static]]", "[dhcp.static]"},
		at: "37:1", key: "dhcp.static", msg: []string{"want tables, each under its own [[...]] header, not a table: write [[dhcp.static]] with two brackets"}},
	{name: "one bracket after two", edits: []string{"[[dhcp.pool]]\n" + pool1, "[dhcp.pool]\n" + pool1},
		at: "33:2", key: "dhcp.pool", msg: []string{"TOML syntax: Key 'dhcp.pool' has already been defined; [dhcp.pool] is one table: write [[dhcp.pool]] for each of them"}},
	{name: "one bracket before two", edits: []string{"[[dhcp.pool]]\n" + pool0, "[dhcp.pool]\n" + pool0},
		at: "33:3", key: "dhcp.pool[0]", msg: []string{"was already created and cannot be used as an array; [dhcp.pool] on line 28 is one table: write [[dhcp.pool]] for each of them"}},
}

func TestHints(t *testing.T) { runErrCases(t, hintCases) }

func TestWarnings(t *testing.T) {
	withHost := afterDNS("\n[[dns.host]]\nname = \"router\"\naddress = \"192.168.1.20\"\n\n[[dns.host]]\nname = \"dns.home.arpa.\"\naddress = \"192.168.1.3\"\n")
	viaOwn := []string{`upstream = "192.168.1.254"` + "\n", `upstream = "192.168.1.254"` + "\n\n[[router.route]]\nto = \"172.16.0.0/16\"\nvia = \"192.168.1.1\"\n"}
	// baseDoc's upstream router is on the alias wire, inside zone lan.
	onWire := func(line int) string {
		return fmt.Sprintf("t.toml:%d:1: warning: router.upstream: the upstream router 192.168.1.254 is inside zone lan's subnet: it gets that zone's rights, and traffic it delivers on the wire reaches lan hosts without crossing this box's firewall", line)
	}
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"none but the upstream on the wire", nil, []string{onWire(23)}},
		// The second host has the DNS alias's own name and address: no harm.
		{"host named like an alias", withHost, []string{onWire(23),
			`t.toml:46:1: warning: dns.host[0].name: "router" is also the name of alias "router": router.home.arpa will answer with both 192.168.1.20 and 192.168.1.1`}},
		{"route via an alias this box holds", viaOwn, []string{onWire(23),
			`t.toml:27:1: warning: router.route[0].via: next hop 192.168.1.1 is the address of alias "router", which this box holds: the kernel refuses a route via the box's own address`}},
		// Held by another box, the router alias is a next hop like any other.
		{"route via an alias another box holds", append(viaOwn, "name = \"router\"\n", "name = \"router\"\nhost = \"gw2\"\n"), []string{onWire(24)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, edit(t, baseDoc, tc.edits...))
			var got []string
			for _, w := range c.Warnings {
				got = append(got, w.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("warnings\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
