package config

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxFileSize is the largest config file gatewayd reads (4 MiB). A site file
// is a few kilobytes; the bound keeps a mistaken or hostile file from costing
// the daemon, which parses on every reload, its memory.
const MaxFileSize = 4 << 20

// Bounds the text must keep before the TOML library sees it. The library's
// memory grows with the square of the nesting depth (16 KB of nested inline
// tables took 689 MB), and with the length of key paths, which every key
// below a table repeats. Written all inline, gatewayd's deepest setting
// (dhcp = {pool = [{option = [{ip = [...]}]}]}) nests 6 deep.
const (
	maxDepth    = 16    // arrays and inline tables inside one another
	maxKeyParts = 8     // dotted parts of one key or table header
	maxKeyLen   = 256   // bytes of one key or header name as written
	maxEntries  = 10000 // elements of one array, [[x]] tables of one name, zones
)

// checkText refuses text that is too large, not UTF-8, or beyond the bounds
// above, at the byte where the bound is passed. It runs before decoding.
func checkText(name string, text []byte) error {
	at := func(off int, key, format string, args ...any) error {
		pos := offsetPosition(text, off)
		return ErrorList{{File: name, Line: pos.Line, Col: pos.Col, Key: key, Msg: fmt.Sprintf(format, args...)}}
	}
	if len(text) > MaxFileSize {
		return at(MaxFileSize, "", "the file is larger than %d bytes (4 MiB), the most gatewayd reads; a site file is a few kilobytes", MaxFileSize)
	}
	if off := invalidUTF8(text); off >= 0 {
		return at(off, "", "the file is not valid UTF-8 text: byte %#02x here is not part of a UTF-8 character; save the file as UTF-8", text[off])
	}
	s := &prescanner{text: text, tables: map[string]int{}}
	s.run()
	if s.err != nil {
		return at(s.err.off, s.err.key, "%s", s.err.msg)
	}
	return nil
}

// invalidUTF8 is the offset of the first byte that is not UTF-8, or -1.
func invalidUTF8(b []byte) int {
	for off := 0; off < len(b); {
		r, n := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && n <= 1 {
			return off
		}
		off += n
	}
	return -1
}

// offsetPosition is the line and byte column of an offset, like the
// locator's (columns count bytes).
func offsetPosition(text []byte, off int) position {
	off = min(off, len(text))
	line := bytes.Count(text[:off], []byte("\n")) + 1
	return position{line, off - (bytes.LastIndexByte(text[:off], '\n') + 1) + 1}
}

// prescanner reads TOML text just far enough to measure nesting, keys and
// list lengths, with strings and comments skipped exactly as the TOML lexer
// does. Where the text is not TOML it stops without a verdict: the library
// stops at the same place with a syntax error, before anything after it can
// cost memory.
type prescanner struct {
	text   []byte
	i      int
	table  string         // the current table header, as written
	key    string         // the key of the current statement
	tables map[string]int // [[name]] → how many
	stack  []frame        // open arrays and inline tables
	err    *boundError
	done   bool // stopped: a bound passed or the text is not TOML
}

type frame struct {
	table bool // an inline table; else an array
	items int  // elements (array) or keys (table) so far
}

type boundError struct {
	off      int
	key, msg string
}

func (s *prescanner) fail(off int, key, format string, args ...any) {
	if !s.done {
		s.err = &boundError{off, key, fmt.Sprintf(format, args...)}
	}
	s.done = true
}

// stop ends the scan without a verdict (the text is not TOML here).
func (s *prescanner) stop() { s.done = true }

func (s *prescanner) peek() byte {
	if s.i >= len(s.text) {
		return 0
	}
	return s.text[s.i]
}

func (s *prescanner) has(prefix string) bool { return bytes.HasPrefix(s.text[s.i:], []byte(prefix)) }

// run reads statements: table headers and key = value lines.
func (s *prescanner) run() {
	for !s.done {
		s.skipBlank(true)
		switch c := s.peek(); {
		case s.i >= len(s.text):
			return
		case c == '[':
			s.header()
		default:
			start := s.i
			key := s.readKey()
			if s.done {
				return
			}
			s.key = string(s.text[start:key])
			if s.skipBlank(false); s.peek() != '=' {
				s.stop()
				return
			}
			s.i++
			s.value()
		}
		s.lineEnd()
	}
}

// lineEnd accepts what may follow a statement: blanks, a comment, a line end.
func (s *prescanner) lineEnd() {
	if s.done {
		return
	}
	for s.peek() == ' ' || s.peek() == '\t' || s.peek() == '\r' {
		s.i++
	}
	switch s.peek() {
	case '#', '\n', 0:
	default:
		s.stop()
	}
}

// skipBlank skips spaces and tabs, and with lines also line ends and comments.
func (s *prescanner) skipBlank(lines bool) {
	for s.i < len(s.text) {
		switch s.text[s.i] {
		case ' ', '\t':
		case '\r', '\n':
			if !lines {
				return
			}
		case '#':
			if !lines {
				return
			}
			if j := bytes.IndexByte(s.text[s.i:], '\n'); j >= 0 {
				s.i += j
			} else {
				s.i = len(s.text)
			}
			continue
		default:
			return
		}
		s.i++
	}
}

// header reads [name] or [[name]].
func (s *prescanner) header() {
	s.i++
	array := s.peek() == '['
	if array {
		s.i++
	}
	s.skipBlank(false)
	start := s.i
	end := s.readKey()
	if s.done {
		return
	}
	s.skipBlank(false)
	closing := "]"
	if array {
		closing = "]]"
	}
	if !s.has(closing) {
		s.stop()
		return
	}
	s.i += len(closing)
	s.table, s.key = strings.Join(splitKey(string(s.text[start:end])), "."), ""
	if array {
		s.tables[s.table]++
		if s.tables[s.table] > maxEntries {
			s.fail(start-2, s.table, "more than %d [[%s]] tables; gatewayd takes at most %d in one list", maxEntries, s.table, maxEntries)
		}
	}
}

// readKey reads a dotted key and returns where it ends.
func (s *prescanner) readKey() int {
	start := s.i
	for part := 1; ; part++ {
		if part > maxKeyParts {
			s.fail(s.i, s.table, "a key or table name has more than %d dotted parts; no gatewayd key has more than 4", maxKeyParts)
			return s.i
		}
		switch c := s.peek(); {
		case c == '"' || c == '\'':
			if !s.skipString(false) {
				s.stop()
				return s.i
			}
		case isBareKeyByte(c):
			for isBareKeyByte(s.peek()) {
				s.i++
			}
		default:
			s.stop()
			return s.i
		}
		end := s.i
		if end-start > maxKeyLen {
			s.fail(start+maxKeyLen, s.table, "a key or table name is longer than %d bytes; no gatewayd key is nearly that long", maxKeyLen)
			return end
		}
		s.skipBlank(false)
		if s.peek() != '.' {
			s.i = end
			return end
		}
		s.i++
		s.skipBlank(false)
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value reads one value after '=' with everything nested in it.
func (s *prescanner) value() {
	const (
		wantValue = iota
		wantKey   // in an inline table, after '{' or ','
		afterValue
	)
	s.stack = s.stack[:0]
	state := wantValue
	for !s.done {
		switch state {
		case wantValue:
			s.skipBlank(len(s.stack) > 0)
			state = afterValue
			if n := len(s.stack); n > 0 && !s.stack[n-1].table {
				if s.peek() == ']' { // an empty array, or after a trailing comma
					s.i++
					s.stack = s.stack[:n-1]
					continue
				}
				if s.stack[n-1].items++; s.stack[n-1].items > maxEntries {
					s.fail(s.i, s.statementKey(), "an array has more than %d elements; gatewayd takes at most %d in one list", maxEntries, maxEntries)
					return
				}
			}
			switch c := s.peek(); c {
			case '[', '{':
				if len(s.stack) >= maxDepth {
					s.fail(s.i, s.statementKey(), "arrays and inline tables are nested more than %d deep here; no gatewayd setting needs more than 6", maxDepth)
					return
				}
				s.i++
				s.stack = append(s.stack, frame{table: c == '{'})
				state = wantValue
				if c == '{' {
					state = wantKey
				}
			case '"', '\'':
				if !s.skipString(true) {
					s.stop()
				}
			default:
				// A bare word: a number, boolean or date (which may hold a space).
				start := s.i
				for s.i < len(s.text) && !strings.ContainsRune("\n,[]{}#\"'=", rune(s.text[s.i])) {
					s.i++
				}
				if s.i == start {
					s.stop()
				}
			}
		case wantKey:
			s.skipBlank(true)
			top := &s.stack[len(s.stack)-1]
			if s.peek() == '}' { // an empty table, or after a trailing comma
				s.i++
				s.stack = s.stack[:len(s.stack)-1]
				state = afterValue
				continue
			}
			if top.items++; top.items > maxEntries {
				s.fail(s.i, s.statementKey(), "an inline table has more than %d keys; gatewayd takes at most %d in one list", maxEntries, maxEntries)
				return
			}
			if s.readKey(); s.done {
				return
			}
			if s.skipBlank(false); s.peek() != '=' {
				s.stop()
				return
			}
			s.i++
			state = wantValue
		case afterValue:
			if len(s.stack) == 0 {
				return
			}
			s.skipBlank(true)
			top := s.stack[len(s.stack)-1]
			switch c := s.peek(); {
			case c == ',':
				s.i++
				state = wantValue
				if top.table {
					state = wantKey
				}
			case c == ']' && !top.table, c == '}' && top.table:
				s.i++
				s.stack = s.stack[:len(s.stack)-1]
			default:
				s.stop()
			}
		}
	}
}

// statementKey is the dotted key of the current statement, for errors.
func (s *prescanner) statementKey() string {
	return join(s.table, strings.Join(splitKey(s.key), "."))
}

// skipString skips a basic or literal string; multi is whether a multi-line
// one may start here (values, not keys). It reports false when the string is
// not closed where the TOML lexer would close it.
func (s *prescanner) skipString(multi bool) bool {
	q := s.text[s.i]
	triple := strings.Repeat(string(q), 3)
	if multi && s.has(triple) {
		s.i += 3
		for !s.has(triple) {
			if s.i >= len(s.text) {
				return false
			}
			if q == '"' && s.text[s.i] == '\\' {
				s.i++
			}
			s.i++
		}
		s.i += 3
		for k := 0; k < 2 && s.peek() == q; k++ { // up to two quotes may close the content
			s.i++
		}
		return true
	}
	for s.i++; s.i < len(s.text); s.i++ {
		switch c := s.text[s.i]; {
		case c == q:
			s.i++
			return true
		case c == '\n':
			return false
		case c == '\\' && q == '"':
			s.i++
		}
	}
	return false
}
