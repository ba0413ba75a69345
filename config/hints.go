package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Hints for the mistakes the TOML library words in its own terms: an address
// without quotes reads as a bad float or date, and [table] written for a
// [[table]] reads as a key defined twice, or as a table where tables go.

var (
	// addressLike is a bare word that is an address, subnet, address:port,
	// range or MAC written without its quotes.
	addressLike = regexp.MustCompile(`^(\d+(\.\d+){1,3}(/\d+|:\d+|-\d+(\.\d+){3})?|([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2})$`)
	// The library's words for [x] and [[x]] both written for one key.
	definedRE = regexp.MustCompile(`^Key '(.+)' (has already been defined|was already created and cannot be used as an array)\.$`)
)

// syntaxHint says what to write instead, for the syntax error message at
// pos; it begins with "; " (or is empty).
func syntaxHint(loc *locator, pos position, message string) string {
	if pos.Line <= len(loc.lines) {
		line := loc.lines[pos.Line-1]
		word := line[min(pos.Col-1, len(line)):]
		if end := strings.IndexAny(word, " \t\r,]}#"); end >= 0 {
			word = word[:end]
		}
		if addressLike.MatchString(word) {
			return fmt.Sprintf("; addresses are strings: write it in quotes, %q", word)
		}
	}
	if m := definedRE.FindStringSubmatch(message); m != nil && isTableArray(splitKey(m[1])) {
		switch n := headerLine(loc, m[1]); {
		case n == pos.Line:
			return fmt.Sprintf("; [%s] is one table: write [[%s]] for each of them", m[1], m[1])
		case n > 0:
			return fmt.Sprintf("; [%s] on line %d is one table: write [[%s]] for each of them", m[1], n, m[1])
		}
	}
	return ""
}

// tableArrayHint is for a [table] written where [[table]]s go.
func tableArrayHint(t reflect.Type, v any, path string) string {
	if _, isTable := v.(map[string]any); isTable && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
		return fmt.Sprintf(": write [[%s]] with two brackets", stripIndex(path))
	}
	return ""
}

// isTableArray reports whether the schema holds a list of tables at key.
func isTableArray(key []string) bool {
	t := reflect.TypeFor[file]()
	for _, k := range key {
		t = deref(t)
		if t.Kind() == reflect.Map {
			t = t.Elem()
			continue
		}
		f, ok := fieldByTag(t, k)
		if !ok {
			return false
		}
		t = f.Type
	}
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct
}

// headerLine is the first line with the single-bracket header [key], or 0.
func headerLine(loc *locator, key string) int {
	for i, line := range loc.lines {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") && !strings.HasPrefix(line, "[[") && strings.Join(splitKey(headerName(line[1:], "]")), ".") == key {
			return i + 1
		}
	}
	return 0
}
