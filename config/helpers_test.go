package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// baseDoc is a small valid config; the error cases edit it. Lines worth knowing:
//
//	 2 interface           21 [router]            37 [[dhcp.static]]   45 [zone.lan]
//	 5 [[alias]] router    23 upstream            38 mac               46 subnets
//	 9 [[alias]] dhcp      25 [dhcp]              39 address           47 allow
//	10 name, 11 address    28 [[dhcp.pool]] 0     41 [dns]             50 [zone.lab]
//	13 [[alias]] dns       29 range, 31 dns       42 alias             51 subnets
//	17 [[alias]] lab       33 [[dhcp.pool]] 1     43 upstreams         52 allow
//	19 address             34 range, 35 router                         53 forward
const baseDoc = `[gateway]
interface = "eth1"
host = "gw1"

[[alias]]
name = "router"
address = "192.168.1.1/24"

[[alias]]
name = "dhcp"
address = "192.168.1.2/24"

[[alias]]
name = "dns"
address = "192.168.1.3/24"

[[alias]]
name = "lab"
address = "10.0.0.1/24"

[router]
alias = "router"
upstream = "192.168.1.254"

[dhcp]
alias = "dhcp"

[[dhcp.pool]]
range = "192.168.1.100-192.168.1.199"
router = "router"
dns = ["dns"]

[[dhcp.pool]]
range = "10.0.0.100-10.0.0.199"
router = "lab"

[[dhcp.static]]
mac = "00:0d:61:0b:d9:a0"
address = "192.168.1.10"

[dns]
alias = "dns"
upstreams = ["192.168.1.254"]

[zone.lan]
subnets = ["192.168.1.0/24"]
allow = ["dhcp", "dns", "ssh"]
forward = ["upstream", "lab"]

[zone.lab]
subnets = ["10.0.0.0/24"]
allow = ["dns"]
forward = ["upstream"]
`

// edit returns doc with each (old, new) pair applied; old must occur exactly
// once. An empty old appends new to the end of the document.
func edit(t testing.TB, doc string, pairs ...string) string {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Fatalf("edit: odd number of arguments %q", pairs)
	}
	for i := 0; i < len(pairs); i += 2 {
		old, repl := pairs[i], pairs[i+1]
		if old == "" {
			doc += repl
			continue
		}
		if n := strings.Count(doc, old); n != 1 {
			t.Fatalf("edit: %q occurs %d times in the document, want once", old, n)
		}
		doc = strings.Replace(doc, old, repl, 1)
	}
	return doc
}

// addAlias is an edit that adds a fifth [[alias]] (lines 21-23) before [router].
func addAlias(name, address string) []string {
	return []string{"[router]\n", "[[alias]]\nname = \"" + name + "\"\naddress = \"" + address + "\"\n\n[router]\n"}
}

func parse(text string) (*Config, error) { return Parse("t.toml", []byte(text)) }

// mustParse parses text that must be valid.
func mustParse(t testing.TB, text string) *Config {
	t.Helper()
	c, err := parse(text)
	if err != nil {
		t.Fatalf("parse: %v\n--- document:\n%s", err, numbered(text))
	}
	return c
}

// problemsIn returns every problem Parse reports in text; the text must be refused.
func problemsIn(t testing.TB, text string) []*Error {
	t.Helper()
	c, err := parse(text)
	if err == nil {
		t.Fatalf("parse accepted the document:\n%s", numbered(text))
	}
	if c != nil {
		t.Errorf("parse returned a config along with the error %v", err)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("parse error %T is not a non-empty ErrorList: %v", err, err)
	}
	return list
}

// errCase is one refused document: baseDoc with edits applied must give count
// problems (default 1), the first reading "t.toml:<at>: <key>: ..." and carrying
// every fragment of msg (what was wrong and what would be valid).
type errCase struct {
	name  string
	edits []string
	at    string // "line:col"
	key   string
	msg   []string
	count int
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := edit(t, baseDoc, tc.edits...)
			list := problemsIn(t, text)
			want := max(tc.count, 1)
			if len(list) != want {
				t.Errorf("got %d problems, want %d:\n%v", len(list), want, ErrorList(list))
			}
			got := list[0].Error()
			prefix := "t.toml:" + tc.at + ": " + tc.key + ": "
			if tc.key == "" {
				prefix = "t.toml:" + tc.at + ": "
			}
			if !strings.HasPrefix(got, prefix) {
				t.Errorf("got  %s\nwant %s...\n--- document:\n%s", got, prefix, numbered(text))
			}
			if list[0].Key != tc.key {
				t.Errorf("Key = %q, want %q", list[0].Key, tc.key)
			}
			for _, m := range tc.msg {
				if !strings.Contains(got, m) {
					t.Errorf("got %s\nwant it to mention %q", got, m)
				}
			}
		})
	}
}

// numbered prefixes each line with its number, for failure messages.
func numbered(text string) string {
	var b strings.Builder
	for i, l := range strings.Split(text, "\n") {
		fmt.Fprintf(&b, "%3d | %s\n", i+1, l)
	}
	return b.String()
}
