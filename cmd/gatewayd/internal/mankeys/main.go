// Command mankeys writes the key reference of gateway.toml(5) from the
// schema (config.Keys), so the page cannot drift from what gatewayd check
// accepts. It owns only the lines between the page's BEGIN KEYS and END KEYS
// comments; the prose around them (description, values, example, files) is
// written by hand. `make man` runs it; its test fails when the page checked
// in differs from what it would write.
//
//	go run ./cmd/gatewayd/internal/mankeys docs/man/gateway.toml.5
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"

	"gatewayd/config"
)

// The markers around the generated lines; what lies outside them is kept.
const (
	begin = `.\" BEGIN KEYS: written by make man from the schema (config.Keys); edit the doc and default tags in package config, not these lines.`
	end   = `.\" END KEYS`
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mankeys PAGE (docs/man/gateway.toml.5)")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "mankeys: %v\n", err)
		os.Exit(1)
	}
}

// rewrite puts the current key reference into the page, if it changed.
func rewrite(page string) error {
	old, err := os.ReadFile(page)
	if err != nil {
		return err
	}
	keys, err := render(config.Keys())
	if err != nil {
		return err
	}
	text, err := splice(old, keys)
	if err != nil {
		return fmt.Errorf("%s: %w", page, err)
	}
	if bytes.Equal(text, old) {
		return nil
	}
	return os.WriteFile(page, text, 0o644)
}

// splice replaces what lies between the markers with keys.
func splice(page, keys []byte) ([]byte, error) {
	b := bytes.Index(page, []byte(begin+"\n"))
	e := bytes.Index(page, []byte("\n"+end+"\n"))
	if b < 0 || e < b {
		return nil, errors.New("no key reference: want a line " + begin + " and, after it, a line " + end)
	}
	var out bytes.Buffer
	out.Write(page[:b+len(begin)+1])
	out.Write(keys)
	out.Write(page[e+1:])
	return out.Bytes(), nil
}

// table is one table of the file and the keys it holds, in schema order.
type table struct {
	doc  config.KeyDoc
	keys []config.KeyDoc
}

// render is one .SS per table, in the order the schema declares them, and
// under it one .TP per key: name and type, what it is for, its default.
// A table's keys declared after its subtables (dns.timeout after
// [dns.cache]) still go under the table itself.
func render(keys []config.KeyDoc) ([]byte, error) {
	var order []string
	tables := map[string]*table{}
	for _, k := range keys {
		if k.Doc == "" {
			return nil, fmt.Errorf("config.Keys: %s has no doc", k.Path)
		}
		if k.Type == "table" || k.Type == "array of tables" {
			order = append(order, k.Path)
			tables[k.Path] = &table{doc: k}
			continue
		}
		parent, _ := split(k.Path)
		t, ok := tables[parent]
		if !ok {
			return nil, fmt.Errorf("config.Keys: %s comes before its table %s", k.Path, parent)
		}
		t.keys = append(t.keys, k)
	}
	var b bytes.Buffer
	for _, path := range order {
		t := tables[path]
		fmt.Fprintf(&b, ".SS %s\n%s\n", header(path), text(t.doc.Doc))
		for _, k := range t.keys {
			_, name := split(k.Path)
			fmt.Fprintf(&b, ".TP\n.BI \"%s = \" %s\n%s\n", name, quote(k.Type), text(k.Doc))
			if k.Default != "" {
				fmt.Fprintf(&b, "Default: %s.\n", value(k.Default))
			}
		}
	}
	return b.Bytes(), nil
}

// split cuts a key's path into its table's path and its own name.
func split(path string) (parent, name string) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

// header is a table as the file writes it: "alias[]" is [[alias]],
// "zone.<name>" is [zone.NAME].
func header(path string) string {
	name := strings.ReplaceAll(strings.ReplaceAll(path, "[]", ""), "<name>", "NAME")
	if strings.HasSuffix(path, "[]") {
		return "[[" + name + "]]"
	}
	return "[" + name + "]"
}

// value is a default in bold when it is a TOML value ("500ms", true,
// ["ssh", "ping"]), in roman when it is words (the hostname).
func value(d string) string {
	var v map[string]any
	if _, err := toml.Decode("v = "+d, &v); err == nil {
		return `\fB` + escape(d) + `\fR`
	}
	return escape(d)
}

// text is a sentence or two as text lines, one a sentence (so groff spaces
// sentences as it should), escaped, none taken for a request.
func text(s string) string {
	parts := strings.Split(escape(s), ". ")
	var b strings.Builder
	for i, p := range parts {
		if strings.HasPrefix(p, ".") || strings.HasPrefix(p, "'") {
			b.WriteString(`\&`)
		}
		b.WriteString(p)
		if i == len(parts)-1 {
			break
		}
		// "e.g. x" and "x. lowercase" go on in the same sentence.
		next := parts[i+1]
		if strings.HasSuffix(p, "e.g") || strings.HasSuffix(p, "i.e") || next == "" || !unicode.IsUpper(rune(next[0])) {
			b.WriteString(". ")
		} else {
			b.WriteString(".\n")
		}
	}
	return b.String()
}

// escape makes backslashes print and hyphens minus signs, as options and
// ranges ("192.168.1.100-192.168.1.199") need to be copied.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\e`), "-", `\-`)
}

// quote is a macro argument: in double quotes when it has a space.
func quote(s string) string {
	s = escape(s)
	if strings.Contains(s, " ") {
		return `"` + s + `"`
	}
	return s
}
