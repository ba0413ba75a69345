package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where the commands look for the config file.
const DefaultPath = "/etc/gatewayd/gateway.toml"

// Load reads, decodes and validates the config file at path. It reads at most
// one byte more than MaxFileSize, so a huge file (or a device) costs nothing.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes and validates config text; name is the file it names in errors.
func Parse(name string, text []byte) (*Config, error) {
	// A UTF-8 byte order mark is not part of the first line's columns.
	text = bytes.TrimPrefix(text, []byte("\ufeff"))
	if err := checkText(name, text); err != nil {
		return nil, err
	}
	var f file
	md, err := toml.NewDecoder(strings.NewReader(string(text))).Decode(&f)
	loc := newLocator(string(text))
	if err != nil {
		return nil, decodeError(name, string(text), loc, err)
	}
	p := &problems{file: name, loc: loc}
	unknownKeys(p, md.Keys())
	checkStrings(p, &f)
	if err := p.err(); err != nil {
		return nil, err
	}
	c := validate(&f, name, p, md.IsDefined)
	if err := p.err(); err != nil {
		return nil, err
	}
	c.Text = bytes.Clone(text)
	return c, nil
}

// unknownKeys reports every key of the file the schema does not have, with the
// valid ones.
func unknownKeys(p *problems, keys []toml.Key) {
	seen := map[string]int{}
	reported := map[string]bool{} // unknown keys, parts joined by NUL
	for _, k := range keys {
		full := k
		k, unknown := unknownPart(k)
		if !unknown {
			continue
		}
		if underAny(k, reported) || len(k) < len(full) && reported[strings.Join(k, "\x00")] {
			continue // inside an unknown table already reported
		}
		reported[strings.Join(k, "\x00")] = true
		// The keys come in file order: past the ones reported, count the rest
		// without placing them (placing is a search through the file).
		if len(p.list) > maxReported {
			p.dropped++
			continue
		}
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
func underAny(k toml.Key, parents map[string]bool) bool {
	for i := 1; i < len(k); i++ {
		if parents[strings.Join(k[:i], "\x00")] {
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
	if checkText(name, bytes.TrimPrefix(text, []byte("\ufeff"))) != nil {
		return "", err // not safe to decode at all
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
