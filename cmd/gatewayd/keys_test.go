package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"gatewayd/config"
)

// The key list comes from package config from the outside: its schema is
// private, so the tests read it back through the unknown-key errors of
// config.Parse, which list the keys valid in each table. (A config.Keys()
// export would let gateway.toml(5) be generated instead of checked.)

// schemaNode is one table of the schema.
type schemaNode struct {
	array bool // [[table]]
	named bool // its children are keyed by any name: [zone.NAME]
	keys  []string
	sub   map[string]*schemaNode
}

// schemaSeg is one step of a table path as a TOML header writes it.
type schemaSeg struct {
	name  string
	array bool
}

const probeKey = "zz_probe"

var validKeysMsg = regexp.MustCompile(`unknown key "` + probeKey + `" (?:at the top level|in \[\[?[^\]]*\]\]?); valid keys are: (.*)`)

// probeTable asks config which keys the table at path accepts.
func probeTable(path []schemaSeg) ([]string, bool) {
	var b strings.Builder
	for i, s := range path {
		names := make([]string, i+1)
		for j := range names {
			names[j] = path[j].name
		}
		if s.array {
			fmt.Fprintf(&b, "[[%s]]\n", strings.Join(names, "."))
		} else if i == len(path)-1 {
			fmt.Fprintf(&b, "[%s]\n", strings.Join(names, "."))
		}
	}
	b.WriteString(probeKey + " = 1\n")
	_, err := config.Parse("probe.toml", []byte(b.String()))
	var list config.ErrorList
	if !errors.As(err, &list) {
		return nil, false
	}
	for _, e := range list {
		if m := validKeysMsg.FindStringSubmatch(e.Error()); m != nil {
			return strings.Split(m[1], ", "), true
		}
	}
	return nil, false
}

// readSchema walks the schema from the top level, trying each key as an
// array of tables, a table, then a table of named tables; what is none of
// them is a value.
func readSchema(t *testing.T, path []schemaSeg) *schemaNode {
	keys, ok := probeTable(path)
	if !ok {
		t.Fatalf("config.Parse no longer lists the valid keys of %v in its unknown-key error; the key list cannot be read (export config.Keys())", path)
	}
	n := &schemaNode{sub: map[string]*schemaNode{}}
	if len(path) > 0 {
		n.array = path[len(path)-1].array
	}
	for _, k := range keys {
		child := append(slices.Clone(path), schemaSeg{name: k, array: true})
		if _, ok := probeTable(child); ok {
			n.sub[k] = readSchema(t, child)
			continue
		}
		child[len(child)-1].array = false
		if _, ok := probeTable(child); ok {
			n.sub[k] = readSchema(t, child)
			continue
		}
		if _, ok := probeTable(append(child, schemaSeg{name: "x"})); ok {
			n.sub[k] = &schemaNode{named: true, sub: map[string]*schemaNode{"NAME": readSchema(t, append(child, schemaSeg{name: "x"}))}}
			continue
		}
		n.keys = append(n.keys, k)
	}
	return n
}

// flatten lists every key as "[table] key", the way gateway.toml(5) heads them.
func (n *schemaNode) flatten(names []string, out map[string]bool) {
	for _, k := range n.keys {
		out[header(names, n.array)+" "+k] = true
	}
	for name, c := range n.sub {
		if n.named {
			name = "NAME"
		}
		c.flatten(append(slices.Clone(names), name), out)
	}
}

func header(names []string, array bool) string {
	if len(names) == 0 {
		return "(top level)"
	}
	if array {
		return "[[" + strings.Join(names, ".") + "]]"
	}
	return "[" + strings.Join(names, ".") + "]"
}

// lookupKey finds a file's key in the schema: its "[table] key" name, with
// the name of a named table replaced by NAME.
func (n *schemaNode) lookupKey(k toml.Key) (string, bool) {
	var names []string
	for _, part := range k[:len(k)-1] {
		if n.named {
			part = "NAME"
		}
		c, ok := n.sub[part]
		if !ok {
			return "", false
		}
		names, n = append(names, part), c
	}
	if !slices.Contains(n.keys, k[len(k)-1]) {
		return "", false
	}
	return header(names, n.array) + " " + k[len(k)-1], true
}

var (
	manKey      = regexp.MustCompile(`^\.BI "([a-z_]+) = " `)
	commentedKV = regexp.MustCompile(`^# ?((?:\[\[?[a-z_.]+\]\]?|[a-z_]+ *=).*)$`)
)

// manKeys reads gateway.toml(5): every .TP whose tag is .BI "key = " type,
// under the .SS of its table; each must say its default or that it is required.
func manKeys(t *testing.T, page string) map[string]bool {
	keys := map[string]bool{}
	for table, lines := range manSections(t, page, "DESCRIPTION") {
		for i := 1; i < len(lines); i++ {
			m := manKey.FindStringSubmatch(lines[i])
			if lines[i-1] != ".TP" || m == nil {
				continue
			}
			keys[table+" "+m[1]] = true
			end := i + 1
			for end < len(lines) && lines[end] != ".TP" {
				end++
			}
			if body := strings.Join(lines[i+1:end], " "); !strings.Contains(body, "Default:") && !strings.Contains(body, "Required") {
				t.Errorf("%s: %s %s says neither its default (Default:) nor that it is Required", page, table, m[1])
			}
		}
	}
	return keys
}

// exampleKeys reads etc/gateway.toml with every commented-out key and table
// header put back, checks that gatewayd check accepts every one of its keys,
// and returns them.
func exampleKeys(t *testing.T, schema *schemaNode) map[string]bool {
	const file = "../../etc/gateway.toml"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if m := commentedKV.FindStringSubmatch(l); m != nil {
			lines[i] = m[1]
		}
	}
	text := strings.Join(lines, "\n")
	_, err = config.Parse(file+" (every key uncommented)", []byte(text))
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			if strings.Contains(e.Msg, "unknown key") {
				t.Errorf("gatewayd check refuses a key etc/gateway.toml documents: %v", e)
			}
		}
	} else if err != nil {
		t.Fatalf("etc/gateway.toml with every key uncommented does not decode: %v", err)
	}
	var v map[string]any
	md, err := toml.Decode(text, &v)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, k := range md.Keys() {
		if typ := md.Type(k...); typ == "Hash" || typ == "ArrayHash" {
			continue
		}
		name, ok := schema.lookupKey(k)
		if !ok {
			t.Errorf("etc/gateway.toml: %s is not a key of the schema", k)
			continue
		}
		keys[name] = true
	}
	return keys
}

// TestManPageDocumentsEveryKey: gateway.toml(5) documents exactly the keys
// gatewayd check accepts, each with its default; so does etc/gateway.toml.
func TestManPageDocumentsEveryKey(t *testing.T) {
	const page = "../../docs/man/gateway.toml.5"
	schema := readSchema(t, nil)
	accepted := map[string]bool{}
	schema.flatten(nil, accepted)
	if len(accepted) < 50 {
		t.Fatalf("read only %d keys from config: %v", len(accepted), accepted)
	}
	documented := manKeys(t, page)
	example := exampleKeys(t, schema)
	for _, k := range slices.Sorted(maps.Keys(accepted)) {
		if !documented[k] {
			t.Errorf("%s: %s is accepted by gatewayd check but not documented (add a .TP under .SS %s)", page, k, strings.Fields(k)[0])
		}
		if !example[k] {
			t.Errorf("etc/gateway.toml: %s is accepted by gatewayd check but not in the commented example", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(documented)) {
		if !accepted[k] {
			t.Errorf("%s documents %s, which gatewayd check does not accept", page, k)
		}
	}
}
