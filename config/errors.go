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

func (e *Error) Error() string { return render(e.File, e.Line, e.Col, "", e.Key, e.Msg) }

// Warning is something in a valid file that is likely a mistake: the config
// is used as written, and the warning says why it may not do what was meant.
type Warning struct {
	File      string
	Line, Col int
	Key       string
	Msg       string
}

// String renders the warning as an Error is rendered, marked "warning: ":
// "gateway.toml:3:1: warning: dns.host[0].name: ...".
func (w Warning) String() string { return render(w.File, w.Line, w.Col, "warning: ", w.Key, w.Msg) }

func render(file string, line, col int, mark, key, msg string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
	} else {
		b.WriteString("<config>")
	}
	fmt.Fprintf(&b, ":%d:%d: %s", line, col, mark)
	if key != "" {
		b.WriteString(oneLine(key))
		b.WriteString(": ")
	}
	b.WriteString(oneLine(msg))
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
	file     string
	loc      *locator
	list     []problem
	dropped  int // found after maxRecorded
	warnings []problem
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

// warn records a warning at the key path.
func (p *problems) warn(path, format string, args ...any) {
	if len(p.warnings) < maxRecorded {
		p.warnings = append(p.warnings, problem{p.loc.find(path), path, format, args})
	}
}

// warningList returns the warnings in file order, at most maxReported and a
// last one counting the rest.
func (p *problems) warningList() []Warning {
	sortProblems(p.warnings)
	var out []Warning
	for _, w := range p.warnings[:min(len(p.warnings), maxReported)] {
		out = append(out, Warning{File: p.file, Line: w.pos.Line, Col: w.pos.Col, Key: w.path, Msg: fmt.Sprintf(w.format, w.args...)})
	}
	if more := len(p.warnings) - maxReported; more > 0 {
		next := p.warnings[maxReported].pos
		out = append(out, Warning{File: p.file, Line: next.Line, Col: next.Col, Msg: fmt.Sprintf("and %d more warnings", more)})
	}
	return out
}

func sortProblems(list []problem) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i].pos, list[j].pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
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
	sortProblems(p.list)
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
