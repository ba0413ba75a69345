package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
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

// Parse decodes and validates config text; file names it in errors.
func Parse(file string, text []byte) (*Config, error) {
	if !utf8Valid(text) {
		return nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: "the file is not valid UTF-8 text"}}
	}
	c := &Config{File: file}
	md, err := toml.NewDecoder(strings.NewReader(string(text))).Decode(c)
	loc := newLocator(string(text))
	if err != nil {
		return nil, decodeError(file, err)
	}
	p := &problems{file: file, loc: loc}
	unknownKeys(p, md.Undecoded())
	if err := p.err(); err != nil {
		return nil, err
	}
	c.File = file
	applyDefaults(c)
	validate(c, p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// decodeError turns the TOML library's errors into an *Error with line:column.
func decodeError(file string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Usage != "" {
			msg += " (" + strings.TrimSpace(strings.ReplaceAll(pe.Usage, "\n", " ")) + ")"
		}
		return ErrorList{{File: file, Line: pe.Position.Line, Col: max(pe.Position.Col, 1), Key: pe.LastKey, Msg: msg}}
	}
	// Type mismatches carry only "line N" in their text.
	return ErrorList{{File: file, Line: lineOf(err.Error()), Col: 1, Msg: strings.TrimPrefix(err.Error(), "toml: ")}}
}

func lineOf(s string) int {
	var n int
	if i := strings.Index(s, "line "); i >= 0 {
		fmt.Sscanf(s[i+5:], "%d", &n)
	}
	return max(n, 1)
}

// unknownKeys reports every key the schema does not have, with the valid ones.
func unknownKeys(p *problems, keys []toml.Key) {
	seen := map[string]int{}
	for _, k := range keys {
		stripped := k.String()
		// Match the n-th undecoded occurrence with the n-th occurrence in the file.
		n := seen[stripped]
		seen[stripped] = n + 1
		path := stripped
		for _, full := range p.loc.order {
			if stripIndex(full) == stripped {
				if n == 0 {
					path = full
					break
				}
				n--
			}
		}
		parent := k[:len(k)-1]
		valid := validKeys(parent)
		where := "at the top level"
		if len(parent) > 0 {
			where = "in [" + strings.Join(parent, ".") + "]"
		}
		p.at(path, "unknown key %q %s; valid keys are: %s", k[len(k)-1], where, strings.Join(valid, ", "))
	}
}

// validKeys lists the keys the schema accepts in the table at path.
func validKeys(path toml.Key) []string {
	t := reflect.TypeFor[Config]()
	for i := 0; i < len(path); i++ {
		t = deref(t)
		if t.Kind() == reflect.Map {
			t = t.Elem() // the path element is the map key (a zone or service name)
			continue
		}
		f, ok := fieldByTag(t, path[i])
		if !ok {
			return nil
		}
		t = f.Type
	}
	t = deref(t)
	if t.Kind() == reflect.Map {
		return []string{"<name>"}
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("toml"); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
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
