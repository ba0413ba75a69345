package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Error is one problem in a config file, placed at the key it is about.
type Error struct {
	File      string
	Line, Col int
	Key       string // the key path, e.g. "alias[1].address"
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("<config>")
	}
	fmt.Fprintf(&b, ":%d:%d: ", e.Line, e.Col)
	if e.Key != "" {
		b.WriteString(oneLine(e.Key))
		b.WriteString(": ")
	}
	b.WriteString(oneLine(e.Msg))
	return b.String()
}

// oneLine escapes control characters (a quoted zone name or the library's
// echo of a bad value may hold a line end), so each problem stays one line.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ErrorList is every problem found in one config file, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// problems collects semantic errors against a locator.
type problems struct {
	file string
	loc  *locator
	list ErrorList
}

// at records a problem at the key path.
func (p *problems) at(path, format string, args ...any) {
	p.add(path, p.loc.find(path), format, args...)
}

// atElem records a problem at the i-th element of the array at the key path.
func (p *problems) atElem(path string, i int, format string, args ...any) {
	p.add(fmt.Sprintf("%s[%d]", path, i), p.loc.findElement(path, i), format, args...)
}

func (p *problems) add(path string, pos position, format string, args ...any) {
	p.list = append(p.list, &Error{File: p.file, Line: pos.Line, Col: pos.Col, Key: path, Msg: fmt.Sprintf(format, args...)})
}

// line gives the line of a path, for messages that point at a second place.
func (p *problems) line(path string) int { return p.loc.find(path).Line }

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool {
		a, b := p.list[i], p.list[j]
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return p.list
}
