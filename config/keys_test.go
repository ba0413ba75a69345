package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestSchemaDocumented: every key of the schema has a doc tag, so Keys (and
// the man page made from it) never lacks one.
func TestSchemaDocumented(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(st reflect.Type, path string)
	walk = func(st reflect.Type, path string) {
		if seen[st] {
			return
		}
		seen[st] = true
		for i := range st.NumField() {
			f := st.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			if strings.TrimSpace(f.Tag.Get("doc")) == "" {
				t.Errorf("%s.%s (%s) has no doc tag", st.Name(), f.Name, join(path, tag))
			}
			if ft := deref(f.Type); ft.Kind() == reflect.Map {
				walk(deref(ft.Elem()), join(path, tag)+".<name>")
			} else if ft.Kind() == reflect.Struct && !isText(ft) {
				walk(ft, join(path, tag))
			}
		}
	}
	walk(reflect.TypeFor[file](), "")
	types := map[string]bool{"string": true, "boolean": true, "integer": true, "duration": true, "address": true, "address/length": true,
		"address:port": true, "address range": true, "MAC address": true, "array of strings": true, "array of addresses": true,
		"array of subnets": true, "table": true, "array of tables": true}
	for _, k := range Keys() {
		if !types[k.Type] {
			t.Errorf("%s: type %q is not one KeyDoc documents", k.Path, k.Type)
		}
		if (k.Type == "table" || k.Type == "array of tables") && k.Default != "" {
			t.Errorf("%s: a table with a default %q", k.Path, k.Default)
		}
	}
}

func TestKeysShape(t *testing.T) {
	byPath := map[string]KeyDoc{}
	for _, k := range Keys() {
		if _, dup := byPath[k.Path]; dup {
			t.Errorf("%s listed twice", k.Path)
		}
		byPath[k.Path] = k
	}
	for path, want := range map[string]KeyDoc{
		"dhcp.pool[].option[].always":  {Type: "boolean", Default: "false"},
		"dhcp.pool[]":                  {Type: "array of tables"},
		"zone.<name>":                  {Type: "table"},
		"zone.<name>.interfaces":       {Type: "array of strings", Default: "none"},
		"gateway.management":           {Type: "array of strings", Default: `["ssh", "ping"]`},
		"gateway.metrics":              {Type: "address:port", Default: "off"},
		"upstream.address":             {Type: "address/length"},
		"dns.cache.stale_answer_after": {Type: "duration", Default: `"1800ms"`},
		"dhcp.static[].mac":            {Type: "MAC address"},
	} {
		k, ok := byPath[path]
		if !ok || k.Type != want.Type || k.Default != want.Default || k.Doc == "" {
			t.Errorf("Keys()[%s] = %+v (listed %v), want type %q default %q", path, k, ok, want.Type, want.Default)
		}
	}
	if keys := Keys(); keys[0].Path != "gateway" || keys[1].Path != "gateway.interface" {
		t.Errorf("Keys() starts %q, %q; want the [gateway] table, then its first key", keys[0].Path, keys[1].Path)
	}
}

var (
	seedHeaderRE = regexp.MustCompile(`^\[\[?\s*([^\]]+?)\s*\]\]?`)
	seedKeyRE    = regexp.MustCompile(`^([a-z_]+)\s*=`)
)

// seedKeys reads etc/gateway.toml, commented lines too, and returns the key
// paths (as Keys writes them) with the lines that write each.
func seedKeys(t *testing.T) map[string][]string {
	text, err := os.ReadFile("../etc/gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	table := ""
	for n, line := range strings.Split(string(text), "\n") {
		line = strings.TrimLeft(line, "# \t")
		if m := seedHeaderRE.FindStringSubmatch(line); m != nil {
			path, ok := schemaPath(splitKey(m[1]))
			if !ok {
				t.Errorf("gateway.toml:%d: [%s] is no table of the schema", n+1, m[1])
				continue
			}
			table = path
			out[table] = append(out[table], line)
			continue
		}
		if m := seedKeyRE.FindStringSubmatch(line); m != nil {
			out[join(table, m[1])] = append(out[join(table, m[1])], line)
		}
	}
	return out
}

// schemaPath turns a table header's parts into its path in Keys.
func schemaPath(parts []string) (string, bool) {
	t, path := reflect.TypeFor[file](), ""
	for _, part := range parts {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Map {
			path, t = path+".<name>", t.Elem()
			continue
		}
		f, ok := fieldByTag(t, part)
		if !ok {
			return "", false
		}
		path, t = join(path, part), f.Type
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !isText(t.Elem()) {
			path, t = path+"[]", t.Elem()
		}
	}
	if t.Kind() == reflect.Map {
		return "", false // [zone] alone is not a table of its own
	}
	return path, true
}

// isTOMLValue reports whether a default is written as a TOML value (not in words).
func isTOMLValue(s string) bool {
	var v map[string]any
	_, err := toml.Decode("v = "+s, &v)
	return err == nil
}

// TestKeysInSeed: etc/gateway.toml shows every key (commented or not), with
// its default on the key's line where the default is a value, and shows no
// key the schema lacks.
func TestKeysInSeed(t *testing.T) {
	seed := seedKeys(t)
	known := map[string]bool{}
	for _, k := range Keys() {
		known[k.Path] = true
		lines, ok := seed[k.Path]
		if !ok {
			t.Errorf("%s is not in etc/gateway.toml", k.Path)
			continue
		}
		if k.Default == "" || !isTOMLValue(k.Default) {
			continue
		}
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, k.Default)
		}
		if !found {
			t.Errorf("etc/gateway.toml does not give %s's default %s on its line: %q", k.Path, k.Default, lines)
		}
	}
	for path, lines := range seed {
		if !known[path] {
			t.Errorf("etc/gateway.toml documents %s, which is no key: %q", path, lines)
		}
	}
}

// defaultFixtures create, in baseDoc, a table that baseDoc lacks: an edit
// whose new text starts with the table's header.
var defaultFixtures = map[string][]string{
	"upstream":             withUpstream("interface = \"eth0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\n"),
	"dhcp.pool[].option[]": {"", "\n[[dhcp.pool.option]]\ncode = 66\ntext = \"tftp\"\n"},
	"dns.cache":            {"", "\n[dns.cache]\n"},
	"dns.rebind":           {"", "\n[dns.rebind]\n"},
}

// TestKeyDefaults: writing a key's documented default (where it is a value)
// gives the same model as leaving the key out.
func TestKeyDefaults(t *testing.T) {
	for _, k := range Keys() {
		if k.Default == "" || !isTOMLValue(k.Default) {
			continue
		}
		table, key := k.Path[:max(strings.LastIndexByte(k.Path, '.'), 0)], k.Path[strings.LastIndexByte(k.Path, '.')+1:]
		t.Run(k.Path, func(t *testing.T) {
			base := baseDoc
			if fixture, ok := defaultFixtures[table]; ok {
				base = edit(t, baseDoc, fixture...)
			}
			header := "[" + strings.ReplaceAll(strings.ReplaceAll(table, "<name>", "lan"), "[]", "") + "]"
			if strings.HasSuffix(table, "[]") {
				header = "[" + header + "]"
			}
			i := strings.Index(base, "\n"+header+"\n")
			if i < 0 && !strings.HasPrefix(base, header+"\n") {
				t.Fatalf("no %s in the test document: add a fixture", header)
			}
			at := i + 1 + len(header) + 1
			with := base[:at] + key + " = " + k.Default + "\n" + base[at:]
			want, got := mustParse(t, base), mustParse(t, with)
			want.Warnings, got.Warnings = nil, nil
			want.Text, got.Text = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %s is not the default:\nwritten  %+v\nleft out %+v", k.Path, k.Default, got, want)
			}
		})
	}
}
