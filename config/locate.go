package config

import (
	"strconv"
	"strings"
)

// position is a 1-based line and column in the config text.
type position struct{ Line, Col int }

// locator maps key paths such as "alias[1].address" or "zone.lan.allow" to where
// they stand in the file, so semantic errors can name a line and column. It reads
// the file's lines itself because the TOML library keeps key positions private.
type locator struct {
	lines []string
	pos   map[string]position
	// order lists every key path in file order, for matching undecoded keys.
	order []string
	// lineKey is the first key path written on each line.
	lineKey map[int]string
	// elems caches where the elements of array values begin, by key path.
	elems map[string][]position
}

func newLocator(text string) *locator {
	l := &locator{lines: strings.Split(text, "\n"), pos: map[string]position{}, lineKey: map[int]string{}, elems: map[string][]position{}}
	arrays := map[string]int{} // array-of-tables path → next index
	current := ""
	for i := 0; i < len(l.lines); i++ {
		raw := l.lines[i]
		line := strings.TrimSpace(raw)
		col := len(raw) - len(strings.TrimLeft(raw, " \t")) + 1
		switch {
		case line == "" || line[0] == '#':
		case strings.HasPrefix(line, "[["):
			name := headerName(line[2:], "]]")
			parent, last := l.resolve(splitKey(name), arrays)
			base := join(parent, last)
			idx := arrays[base]
			arrays[base] = idx + 1
			current = base + "[" + strconv.Itoa(idx) + "]"
			l.record(current, position{i + 1, col})
		case line[0] == '[':
			parent, last := l.resolve(splitKey(headerName(line[1:], "]")), arrays)
			current = join(parent, last)
			l.record(current, position{i + 1, col})
		default:
			eq := strings.IndexByte(line, '=')
			if eq <= 0 || strings.ContainsAny(line[:1], `"'[{,]}`) && !isQuotedKey(line[:eq]) {
				continue
			}
			key := strings.Join(splitKey(strings.TrimSpace(line[:eq])), ".")
			l.record(join(current, key), position{i + 1, col})
			// Skip the rest of the value: a multi-line array or string may hold
			// lines that look like keys or table headers.
			i = l.valueEnd(i, col-1+eq)
		}
	}
	return l
}

// valueEnd returns the line on which the value after the '=' at line li, byte
// ci ends.
func (l *locator) valueEnd(li, ci int) int {
	s := &scanner{lines: l.lines, li: li, ci: ci + 1}
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.next()
	}
	if c := s.peek(); c == '\n' || c == 0 || c == '#' {
		return li // no value on this line
	}
	if !s.skipValue() {
		return li // unclosed: a syntax error; keep reading keys after it
	}
	return min(s.li, len(l.lines)-1)
}

func isQuotedKey(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) > 1 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0]
}

func (l *locator) record(path string, p position) {
	if _, seen := l.pos[path]; !seen {
		l.pos[path] = p
	}
	l.order = append(l.order, path)
	if _, seen := l.lineKey[p.Line]; !seen {
		l.lineKey[p.Line] = path
	}
}

// resolve turns a header's dotted name into its parent path with array indices
// ("dhcp.pool" → "dhcp.pool[1]" when inside the second [[dhcp.pool]]).
func (l *locator) resolve(parts []string, arrays map[string]int) (string, string) {
	path := ""
	for _, p := range parts[:len(parts)-1] {
		path = join(path, p)
		if n, ok := arrays[path]; ok && n > 0 {
			path += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return path, parts[len(parts)-1]
}

func headerName(s, closing string) string {
	if i := strings.Index(s, closing); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// splitKey splits a dotted TOML key, honouring quoted parts.
func splitKey(s string) []string {
	var parts []string
	var b strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			b.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(b.String()))
			b.Reset()
		case c != ' ' && c != '\t':
			b.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(b.String()))
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// find returns the position of path: where it is written, inside an inline
// table or array if need be, or else its nearest recorded ancestor.
func (l *locator) find(path string) position {
	pos, _ := l.findExact(path)
	return pos
}

// findExact is find, and whether the position is path's own.
func (l *locator) findExact(path string) (position, bool) {
	for p := path; p != ""; {
		if pos, ok := l.pos[p]; ok {
			if p == path {
				return pos, true
			}
			return l.inside(pos, path[len(p):])
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return position{1, 1}, false
}

// offset returns the position of a byte offset in the text (columns count bytes).
func (l *locator) offset(off int) position {
	for i, line := range l.lines {
		if off <= len(line) {
			return position{i + 1, max(off, 0) + 1}
		}
		off -= len(line) + 1
	}
	last := len(l.lines) - 1
	return position{last + 1, len(l.lines[last]) + 1}
}

// keyOnLine returns the first key path written on a line, or "".
func (l *locator) keyOnLine(line int) string { return l.lineKey[line] }

// findElement returns the position of the n-th element (from 0) of the array
// written as the value of the key at path, falling back to the key itself.
func (l *locator) findElement(path string, n int) position {
	pos, exact := l.findExact(path)
	if !exact {
		return pos
	}
	elems, ok := l.elems[path]
	if !ok {
		elems = l.elements(pos)
		l.elems[path] = elems
	}
	if n < len(elems) {
		return elems[n]
	}
	return pos
}

// elements returns where each element of the array written after the key at
// pos begins; nil when the value is not an array. Reading them all at once
// keeps placing every element of a long array linear.
func (l *locator) elements(pos position) []position {
	s := &scanner{lines: l.lines, li: pos.Line - 1, ci: pos.Col - 1}
	if !s.toValue() || s.peek() != '[' {
		return nil
	}
	s.next()
	var out []position
	for {
		s.skipSpace()
		if c := s.peek(); c == 0 || c == ']' {
			return out
		}
		out = append(out, position{s.li + 1, s.ci + 1})
		s.skipValue()
		s.skipSpace()
		if s.peek() != ',' {
			return out
		}
		s.next()
	}
}

// scanner walks TOML text byte by byte across lines, just well enough to find
// the elements of an array value.
type scanner struct {
	lines  []string
	li, ci int
}

// peek returns the current byte, '\n' at the end of a line, 0 at the end of text.
func (s *scanner) peek() byte {
	switch {
	case s.li >= len(s.lines):
		return 0
	case s.ci >= len(s.lines[s.li]):
		if s.li == len(s.lines)-1 {
			return 0
		}
		return '\n'
	}
	return s.lines[s.li][s.ci]
}

func (s *scanner) next() {
	if s.li < len(s.lines) && s.ci >= len(s.lines[s.li]) {
		s.li, s.ci = s.li+1, 0
	} else {
		s.ci++
	}
}

func (s *scanner) has(prefix string) bool {
	return s.li < len(s.lines) && strings.HasPrefix(s.lines[s.li][min(s.ci, len(s.lines[s.li])):], prefix)
}

// skipSpace skips blanks, line ends and comments.
func (s *scanner) skipSpace() {
	for {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.next()
		case '#':
			s.ci = len(s.lines[s.li])
		default:
			return
		}
	}
}

// skipValue skips one value: a string, an array or inline table, or a bare
// word. It reports false when the text ends before the value does.
func (s *scanner) skipValue() bool {
	switch c := s.peek(); c {
	case '"', '\'':
		return s.skipString(c)
	case '[', '{':
		depth := 0
		for {
			switch c := s.peek(); c {
			case 0:
				return false
			case '"', '\'':
				if !s.skipString(c) {
					return false
				}
				continue
			case '#':
				s.ci = len(s.lines[s.li])
				continue
			case '[', '{':
				depth++
			case ']', '}':
				depth--
			}
			s.next()
			if depth == 0 {
				return true
			}
		}
	default:
		for c := s.peek(); c != 0 && !strings.ContainsRune(", \t\r\n]}#", rune(c)); c = s.peek() {
			s.next()
		}
		return true
	}
}

// skipString skips a basic or literal string, single- or multi-line. It
// reports false when the string is not closed.
func (s *scanner) skipString(q byte) bool {
	triple := strings.Repeat(string(q), 3)
	if s.has(triple) {
		s.ci += 3
		for !s.has(triple) {
			if s.peek() == 0 {
				return false
			}
			if q == '"' && s.peek() == '\\' {
				s.next()
			}
			s.next()
		}
		s.ci += 3
		for s.has(string(q)) { // up to two quotes may close the content
			s.ci++
		}
		return true
	}
	s.next()
	for c := s.peek(); c != q; c = s.peek() {
		if c == '\n' || c == 0 {
			return false
		}
		if q == '"' && c == '\\' {
			s.next()
		}
		s.next()
	}
	s.next()
	return true
}

// nth returns the full path (with array indices) of the n-th place in the file
// where the key path stripped (without indices) is written. A key written only
// as part of a dotted key ("lease.time = ...") is placed at that dotted key.
func (l *locator) nth(stripped string, n int) string {
	for _, exact := range []bool{true, false} {
		k := n
		for _, full := range l.order {
			s := stripIndex(full)
			if s == stripped || !exact && strings.HasPrefix(s, stripped+".") {
				if k == 0 {
					return full
				}
				k--
			}
		}
	}
	return stripped
}

// stripIndex removes array indices: "alias[1].name" → "alias.name".
func stripIndex(path string) string {
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}
