package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where the commands look for the config file.
const DefaultPath = "/etc/gatewayd/gateway.toml"

// Load reads, decodes and validates the config file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes and validates config text; name is the file it names in errors.
func Parse(name string, text []byte) (*Config, error) {
	if !utf8Valid(text) {
		return nil, ErrorList{{File: name, Line: 1, Col: 1, Msg: "the file is not valid UTF-8 text"}}
	}
	// A UTF-8 byte order mark is not part of the first line's columns.
	text = bytes.TrimPrefix(text, []byte("\ufeff"))
	var f file
	md, err := toml.NewDecoder(strings.NewReader(string(text))).Decode(&f)
	loc := newLocator(string(text))
	if err != nil {
		return nil, decodeError(name, string(text), loc, err)
	}
	p := &problems{file: name, loc: loc}
	unknownKeys(p, md.Keys())
	if err := p.err(); err != nil {
		return nil, err
	}
	c := validate(&f, name, p, md.IsDefined)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// unknownKeys reports every key of the file the schema does not have, with the
// valid ones.
func unknownKeys(p *problems, keys []toml.Key) {
	seen := map[string]int{}
	var reported []toml.Key
	for _, k := range keys {
		full := k
		k, unknown := unknownPart(k)
		if !unknown {
			continue
		}
		if underAny(k, reported) || len(k) < len(full) && slices.ContainsFunc(reported, func(r toml.Key) bool { return slices.Equal(r, k) }) {
			continue // inside an unknown table already reported
		}
		reported = append(reported, k)
		stripped := strings.Join(k, ".")
		// Match the n-th undecoded occurrence with the n-th occurrence in the file.
		n := seen[stripped]
		seen[stripped] = n + 1
		path := p.loc.nth(stripped, n)
		parent := k[:len(k)-1]
		valid, array := validKeys(parent)
		where := "at the top level"
		switch {
		case array:
			where = "in [[" + strings.Join(parent, ".") + "]]"
		case len(parent) > 0:
			where = "in [" + strings.Join(parent, ".") + "]"
		}
		if len(valid) == 0 {
			p.at(path, "unknown key %q %s", k[len(k)-1], where)
			continue
		}
		if i := slices.IndexFunc(valid, func(v string) bool { return strings.EqualFold(v, k[len(k)-1]) }); i >= 0 {
			p.at(path, "unknown key %q %s: keys are lowercase, write %q", k[len(k)-1], where, valid[i])
			continue
		}
		p.at(path, "unknown key %q %s; valid keys are: %s", k[len(k)-1], where, strings.Join(valid, ", "))
	}
}

// unknownPart shortens a key to its first part the schema does not know, and
// reports whether there is one: "dhcp.lease.time" (written as a dotted key) is
// the unknown "dhcp.lease". Names must match exactly; the TOML library would
// also accept "Interface" for "interface".
func unknownPart(k toml.Key) (toml.Key, bool) {
	for i := range k {
		valid, _ := validKeys(k[:i])
		if len(valid) == 1 && valid[0] == "<name>" {
			continue // any zone or service name
		}
		if !slices.Contains(valid, k[i]) {
			return k[:i+1], true
		}
	}
	return k, false
}

// underAny reports whether k lies inside one of the tables in parents.
func underAny(k toml.Key, parents []toml.Key) bool {
	for _, p := range parents {
		if len(p) < len(k) && slices.Equal(p, k[:len(p)]) {
			return true
		}
	}
	return false
}

// validKeys lists the keys the schema accepts in the table at path, and whether
// that table is an array of tables.
func validKeys(path toml.Key) ([]string, bool) {
	t := reflect.TypeFor[file]()
	array := false
	for i := 0; i < len(path); i++ {
		t = deref(t)
		if t.Kind() == reflect.Map {
			t = t.Elem() // the path element is the map key (a zone or service name)
			continue
		}
		f, ok := fieldByTag(t, path[i])
		if !ok {
			return nil, false
		}
		t = f.Type
		array = t.Kind() == reflect.Slice
	}
	t = deref(t)
	switch t.Kind() {
	case reflect.Map:
		return []string{"<name>"}, false
	case reflect.Struct:
	default:
		return nil, false
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("toml"); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys, array
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("toml") == tag {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// ControlSocket finds the control socket a config file names, for the
// commands that talk to the daemon. When the file does not validate, it still
// reads [gateway] control_socket alone if it can, and returns the validation
// error with it; socket is "" only when not even that could be read.
func ControlSocket(name string, text []byte) (socket string, err error) {
	c, err := Parse(name, text)
	if err == nil {
		return c.Gateway.ControlSocket, nil
	}
	var lenient struct {
		Gateway struct {
			ControlSocket string `toml:"control_socket"`
		} `toml:"gateway"`
	}
	if _, derr := toml.Decode(string(text), &lenient); derr != nil {
		return "", err
	}
	return orDefault(lenient.Gateway.ControlSocket, DefaultControlSocket), err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
