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
}

func newLocator(text string) *locator {
	l := &locator{lines: strings.Split(text, "\n"), pos: map[string]position{}}
	arrays := map[string]int{} // array-of-tables path → next index
	current := ""
	for i, raw := range l.lines {
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
		}
	}
	return l
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

// find returns the position of path, or of its nearest recorded ancestor.
func (l *locator) find(path string) position {
	for p := path; p != ""; {
		if pos, ok := l.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return position{1, 1}
}

// findValue returns the position of a quoted value inside the key at path (an
// array element, say), falling back to the key itself.
func (l *locator) findValue(path, value string) position {
	pos, ok := l.pos[path]
	if !ok || value == "" {
		return l.find(path)
	}
	needle := strconv.Quote(value)
	for i := pos.Line - 1; i < len(l.lines) && i < pos.Line+50; i++ {
		if i > pos.Line-1 && strings.Contains(l.lines[i], "=") {
			break
		}
		if c := strings.Index(l.lines[i], needle); c >= 0 {
			return position{i + 1, c + 1}
		}
	}
	return pos
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
