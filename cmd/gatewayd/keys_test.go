package main

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"gatewayd/config"
)

// commentedKV is a commented-out key or table header of the example.
var commentedKV = regexp.MustCompile(`^# ?((?:\[\[?[a-z_.]+\]\]?|[a-z_]+ *=).*)$`)

// schemaPaths are config.Keys' paths ("dhcp.pool[].option[].always",
// "zone.<name>.allow"), each saying whether it is a table.
func schemaPaths() map[string]bool {
	out := map[string]bool{}
	for _, k := range config.Keys() {
		out[k.Path] = k.Type == "table" || k.Type == "array of tables"
	}
	return out
}

// schemaPath is a file's key as config.Keys writes it: "[]" after each
// array of tables, "<name>" for the name of a table the file names.
func schemaPath(md toml.MetaData, k toml.Key, schema map[string]bool) string {
	path := ""
	for i, part := range k {
		if _, named := schema[join(path, "<name>")]; named {
			part = "<name>"
		}
		path = join(path, part)
		if md.Type(k[:i+1]...) == "ArrayHash" {
			path += "[]"
		}
	}
	return path
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// TestExampleDocumentsEveryKey: etc/gateway.toml, with every commented-out
// key and table header put back, holds every key of the schema and no other.
// (gateway.toml(5) is generated from the schema: see internal/mankeys.)
func TestExampleDocumentsEveryKey(t *testing.T) {
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
	var v map[string]any
	md, err := toml.Decode(strings.Join(lines, "\n"), &v)
	if err != nil {
		t.Fatalf("%s with every key uncommented does not decode: %v", file, err)
	}
	schema := schemaPaths()
	example := map[string]bool{}
	for _, k := range md.Keys() {
		if typ := md.Type(k...); typ == "Hash" || typ == "ArrayHash" {
			continue
		}
		path := schemaPath(md, k, schema)
		if table, ok := schema[path]; !ok || table {
			t.Errorf("%s: %s (%s) is not a key of the schema", file, k, path)
			continue
		}
		example[path] = true
	}
	for _, path := range slices.Sorted(maps.Keys(schema)) {
		if !schema[path] && !example[path] {
			t.Errorf("%s: %s is a key of the schema but not in the commented example", file, path)
		}
	}
}
