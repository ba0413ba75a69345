package config

import "strings"

// Placing a key path inside a value written inline: alias = [{...}, {...}]
// or cache = {size = -1}. The locator records keys written at the start of a
// line; these find the rest by reading the value.

// inside returns the position of rest (".key" and "[i]" steps) within the
// value of the key at pos, as deep as it can be followed, and whether all
// of it was.
func (l *locator) inside(pos position, rest string) (position, bool) {
	s := &scanner{lines: l.lines, li: pos.Line - 1, ci: pos.Col - 1}
	if !s.toValue() {
		return pos, false
	}
	steps := pathSteps(rest)
	best := pos
	for k := 0; k < len(steps); {
		s.skipSpace()
		if steps[k].index >= 0 {
			if s.peek() != '[' {
				return best, false
			}
			s.next()
			if !s.toElement(steps[k].index) {
				return best, false
			}
			best = position{s.li + 1, s.ci + 1}
			k++
			continue
		}
		if s.peek() != '{' {
			return best, false
		}
		s.next()
		at, n := s.toKey(steps[k:])
		if n == 0 {
			return best, false
		}
		best = at
		k += n
	}
	return best, true
}

// step is one step of a key path: a key, or an array index (index >= 0).
type step struct {
	key   string
	index int
}

// pathSteps splits ".a[2].b" into its steps.
func pathSteps(rest string) []step {
	var out []step
	for rest != "" {
		if rest[0] == '[' {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				break
			}
			n := 0
			for _, c := range rest[1:end] {
				n = n*10 + int(c-'0')
			}
			out = append(out, step{index: n})
			rest = rest[end+1:]
			continue
		}
		rest = strings.TrimPrefix(rest, ".")
		end := strings.IndexAny(rest, ".[")
		if end < 0 {
			end = len(rest)
		}
		out = append(out, step{key: rest[:end], index: -1})
		rest = rest[end:]
	}
	return out
}

// toElement moves from just inside '[' to the start of element i.
func (s *scanner) toElement(i int) bool {
	for j := 0; ; j++ {
		s.skipSpace()
		if c := s.peek(); c == 0 || c == ']' {
			return false
		}
		if j == i {
			return true
		}
		s.skipValue()
		s.skipSpace()
		if s.peek() != ',' {
			return false
		}
		s.next()
	}
}

// toKey moves from just inside '{' to the key whose dotted parts begin
// steps (or that steps end inside), leaving the scanner at its value. It
// returns where the key starts and how many steps it covers (0: none).
func (s *scanner) toKey(steps []step) (position, int) {
	for {
		s.skipSpace()
		if c := s.peek(); c == 0 || c == '}' {
			return position{}, 0
		}
		at := position{s.li + 1, s.ci + 1}
		parts, ok := s.readKey()
		if !ok {
			return position{}, 0
		}
		m := 0
		for m < len(parts) && m < len(steps) && steps[m].index < 0 && steps[m].key == parts[m] {
			m++
		}
		s.next() // the '='
		for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
			s.next()
		}
		if m > 0 && (m == len(parts) || m == len(steps)) {
			return at, m
		}
		s.skipValue()
		s.skipSpace()
		if s.peek() != ',' {
			return position{}, 0
		}
		s.next()
	}
}

// toValue moves from the start of a key to the start of its value.
func (s *scanner) toValue() bool {
	if _, ok := s.readKey(); !ok {
		return false
	}
	s.next()
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.next()
	}
	return true
}

// readKey reads a dotted key up to its '=' and returns its parts (quoted
// ones as written between their quotes).
func (s *scanner) readKey() ([]string, bool) {
	var parts []string
	for {
		for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
			s.next()
		}
		switch c := s.peek(); {
		case c == '"' || c == '\'':
			line, start := s.li, s.ci+1
			if !s.skipString(c) || s.li != line {
				return nil, false
			}
			parts = append(parts, s.lines[line][start:s.ci-1])
		case isBareKeyByte(c):
			start := s.ci
			for isBareKeyByte(s.peek()) {
				s.next()
			}
			parts = append(parts, s.lines[s.li][start:s.ci])
		default:
			return nil, false
		}
		for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
			s.next()
		}
		switch s.peek() {
		case '.':
			s.next()
		case '=':
			return parts, true
		default:
			return nil, false
		}
	}
}
