package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decodeError turns the TOML library's error into an ErrorList placed at the key,
// or the array element, it is about. The library reports a value it cannot decode
// by its key without array indices ("alias.address") and at the last place that
// key occurs, so the culprit is found again by decoding each candidate value alone.
func decodeError(name, text string, loc *locator, err error) error {
	var raw map[string]any
	if _, perr := toml.Decode(text, &raw); perr != nil {
		return syntaxError(name, loc, perr)
	}
	at := func(path string, pos position, format string, args ...any) error {
		return ErrorList{{File: name, Line: pos.Line, Col: pos.Col, Key: path, Msg: fmt.Sprintf(format, args...)}}
	}
	key := failedKey(err)
	path, elem, t, value, ok := blame(reflect.TypeFor[file](), raw, splitKey(key), "")
	if key == "" || !ok {
		// Not expected: the failing value could not be found again. Keep the
		// library's own placement.
		pos := position{lineOf(err.Error()), 1}
		var pe toml.ParseError
		if errors.As(err, &pe) && pe.Position.Line > 0 {
			pos = loc.offset(pe.Position.Start)
		}
		return at(key, pos, "%s", strings.TrimPrefix(err.Error(), "toml: "))
	}
	if elem >= 0 {
		pos := loc.findElement(path, elem)
		return at(fmt.Sprintf("%s[%d]", path, elem), pos, "%s", valueProblem(t.Elem(), value.([]any)[elem], err))
	}
	return at(path, loc.find(path), "%s%s", valueProblem(t, value, err), tableArrayHint(t, value, path))
}

// syntaxError places a TOML syntax error; its key is the key written on the
// error's line, if any (the library's "last key" may be an earlier one).
func syntaxError(name string, loc *locator, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return ErrorList{{File: name, Line: 1, Col: 1, Msg: strings.TrimPrefix(err.Error(), "toml: ")}}
	}
	msg := "TOML syntax: " + pe.Message
	if pe.Usage != "" {
		msg += " (" + strings.Join(strings.Fields(pe.Usage), " ") + ")"
	}
	pos := position{max(pe.Position.Line, 1), max(pe.Position.Col, 1)}
	if pe.Position.Start > 0 || pe.Position.Line == 1 {
		// The library counts a line end as part of the next line; the byte
		// offset is exact.
		pos = loc.offset(pe.Position.Start)
	}
	if hint := syntaxHint(loc, pos, pe.Message); hint != "" {
		msg = strings.TrimSuffix(msg, ".") + hint
	}
	return ErrorList{{File: name, Line: pos.Line, Col: pos.Col, Key: loc.keyOnLine(pos.Line), Msg: msg}}
}

var lastKeyRE = regexp.MustCompile(`last key ("(?:[^"\\]|\\.)*")`)

// failedKey is the dotted key (without array indices) of the value the library
// could not decode.
func failedKey(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.LastKey != "" {
		return pe.LastKey
	}
	if m := lastKeyRE.FindStringSubmatch(err.Error()); m != nil {
		if s, uerr := strconv.Unquote(m[1]); uerr == nil {
			return s
		}
	}
	return ""
}

func lineOf(s string) int {
	var n int
	if i := strings.Index(s, "line "); i >= 0 {
		fmt.Sscanf(s[i+5:], "%d", &n)
	}
	return max(n, 1)
}

// blame walks the parsed document along key and returns the first value there
// (in file order) that does not decode into its Go type: its indexed path, the
// element of an array that fails (-1 for the whole value), the Go type and the
// TOML value.
func blame(t reflect.Type, v any, key []string, path string) (string, int, reflect.Type, any, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	m, ok := v.(map[string]any)
	if !ok || len(key) == 0 {
		return "", 0, nil, nil, false
	}
	var ft reflect.Type
	switch t.Kind() {
	case reflect.Struct:
		f, ok := fieldByTag(t, key[0])
		if !ok {
			return "", 0, nil, nil, false
		}
		ft = f.Type
	case reflect.Map:
		ft = t.Elem()
	default:
		return "", 0, nil, nil, false
	}
	child, ok := m[key[0]]
	if !ok {
		return "", 0, nil, nil, false
	}
	path = join(path, key[0])
	if len(key) == 1 {
		return blameValue(ft, child, path)
	}
	if tables := tableArray(child); tables != nil && ft.Kind() == reflect.Slice {
		for i, e := range tables {
			if p, n, et, ev, ok := blame(ft.Elem(), e, key[1:], fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, n, et, ev, true
			}
		}
		return "", 0, nil, nil, false
	}
	return blame(ft, child, key[1:], path)
}

// blameValue checks one value; for an array of plain values it finds the element.
func blameValue(t reflect.Type, v any, path string) (string, int, reflect.Type, any, bool) {
	if decodes(t, v) {
		return "", 0, nil, nil, false
	}
	if list, ok := v.([]any); ok && t.Kind() == reflect.Slice && !isText(t) {
		for i, e := range list {
			if !decodes(t.Elem(), e) {
				return path, i, t, v, true
			}
		}
	}
	return path, -1, t, v, true
}

// tableArray returns v as a list of tables ([[x]] or x = [{...}]), or nil.
func tableArray(v any) []map[string]any {
	switch v := v.(type) {
	case []map[string]any:
		return v
	case []any:
		var out []map[string]any
		for _, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return nil
			}
			out = append(out, m)
		}
		return out
	}
	return nil
}

// decodes reports whether the TOML value v decodes into a Go value of type t.
func decodes(t reflect.Type, v any) bool {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"v": v}); err != nil {
		return true // cannot tell; do not blame it
	}
	st := reflect.StructOf([]reflect.StructField{{Name: "V", Type: t, Tag: `toml:"v"`}})
	_, err := toml.Decode(buf.String(), reflect.New(st).Interface())
	return err == nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func isText(t reflect.Type) bool { return reflect.PointerTo(t).Implements(textUnmarshaler) }

// valueProblem says what is wrong with a value and what would be valid.
func valueProblem(t reflect.Type, v any, err error) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s, isString := v.(string)
	switch {
	case !isString && (isText(t) || t.Kind() == reflect.String):
		return fmt.Sprintf("want %s, not %s", describe(t), tomlKind(v))
	case isString && isText(t):
		var pe toml.ParseError
		detail := err.Error()
		if errors.As(err, &pe) {
			detail = pe.Message
		}
		switch t {
		case reflect.TypeFor[duration](), reflect.TypeFor[mac](), reflect.TypeFor[Range]():
			return detail // these say what is valid themselves
		}
		// netip errors read `netip.ParsePrefix("x"): prefix length out of range`.
		if i := strings.LastIndex(detail, "): "); i >= 0 {
			detail = detail[i+3:]
		}
		return fmt.Sprintf("%q is not valid (%s): want %s", s, detail, describe(t))
	}
	if _, isInt := v.(int64); isInt && t.Kind() == reflect.Int {
		return fmt.Sprintf("%d is out of range: want %s", v, describe(t))
	}
	return fmt.Sprintf("want %s, not %s", describe(t), tomlKind(v))
}

// describe names a Go type the way the file writes it.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[netip.Prefix]():
		return `an IPv4 address with its prefix length, e.g. "192.168.1.2/24"`
	case reflect.TypeFor[netip.Addr]():
		return `an IPv4 address, e.g. "192.168.1.1"`
	case reflect.TypeFor[netip.AddrPort]():
		return `an address and a port, e.g. "127.0.0.1:9253"`
	case reflect.TypeFor[duration]():
		return `a duration, e.g. "90s", "30m", "12h" or "2d"`
	case reflect.TypeFor[mac]():
		return `a MAC address, e.g. "00:0d:61:0b:d9:a0"`
	case reflect.TypeFor[Range]():
		return `an address range, e.g. "192.168.1.100-192.168.1.199"`
	case reflect.TypeFor[time.Duration]():
		return `a duration, e.g. "30s"`
	}
	switch t.Kind() {
	case reflect.String:
		return `a string in quotes`
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return `a whole number`
	case reflect.Bool:
		return `true or false`
	case reflect.Slice:
		return describeArray(t.Elem())
	case reflect.Struct, reflect.Map:
		return "a table"
	}
	return t.String()
}

// describeArray names an array of values of type t.
func describeArray(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[netip.Addr]():
		return `an array of IPv4 addresses, e.g. ["192.168.1.1"]`
	case reflect.TypeFor[netip.Prefix]():
		return `an array of subnets, e.g. ["192.168.1.0/24"]`
	}
	switch t.Kind() {
	case reflect.String:
		return `an array of strings, e.g. ["dns"]`
	case reflect.Struct:
		return "tables, each under its own [[...]] header"
	}
	return "an array of " + t.String()
}

// tomlKind names a TOML value's type.
func tomlKind(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer (" + strconv.FormatInt(v, 10) + ")"
	case float64:
		return "a float"
	case bool:
		return "a boolean (" + strconv.FormatBool(v) + ")"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}
