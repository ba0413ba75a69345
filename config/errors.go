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

// Limits on what one check reports: a broken or hostile file may hold a
// million problems, and nobody reads past the first screen.
const (
	maxReported = 20   // problems listed, in file order; then "and N more"
	maxRecorded = 1000 // problems placed and kept; past it they are only counted
)

// problems collects semantic errors against a locator. Messages are
// formatted only for the problems reported, so an argument may be a
// fmt.Stringer that is costly to render (names).
type problems struct {
	file    string
	loc     *locator
	list    []problem
	dropped int // found after maxRecorded
}

type problem struct {
	pos    position
	path   string
	format string
	args   []any
}

// at records a problem at the key path.
func (p *problems) at(path, format string, args ...any) {
	if p.full() {
		return
	}
	p.add(path, p.loc.find(path), format, args...)
}

// atElem records a problem at the i-th element of the array at the key path.
func (p *problems) atElem(path string, i int, format string, args ...any) {
	if p.full() {
		return
	}
	p.add(fmt.Sprintf("%s[%d]", path, i), p.loc.findElement(path, i), format, args...)
}

// full reports, and counts, a problem past maxRecorded.
func (p *problems) full() bool {
	if len(p.list) < maxRecorded {
		return false
	}
	p.dropped++
	return true
}

func (p *problems) add(path string, pos position, format string, args ...any) {
	p.list = append(p.list, problem{pos, path, format, args})
}

// found reports whether any problem was found.
func (p *problems) found() bool { return len(p.list) > 0 }

// line gives the line of a path, for messages that point at a second place.
func (p *problems) line(path string) int { return p.loc.find(path).Line }

// err returns the problems in file order, the first maxReported of them and
// a last line counting the rest; nil when there are none.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool {
		a, b := p.list[i].pos, p.list[j].pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	var out ErrorList
	for _, pr := range p.list[:min(len(p.list), maxReported)] {
		out = append(out, &Error{File: p.file, Line: pr.pos.Line, Col: pr.pos.Col, Key: pr.path, Msg: fmt.Sprintf(pr.format, pr.args...)})
	}
	if more := len(p.list) - maxReported + p.dropped; more > 0 {
		next := p.list[min(maxReported, len(p.list)-1)].pos
		out = append(out, &Error{File: p.file, Line: next.Line, Col: next.Col, Msg: fmt.Sprintf("and %d more problems; fix these first", more)})
	}
	return out
}
