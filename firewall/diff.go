package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// diffContext is the number of unchanged lines shown around a change.
const diffContext = 3

// maxEdits bounds the edit search of the line diff; past it the differing
// middle is shown as removed and added whole.
const maxEdits = 1000

// Diff shows what replacing old with new changes, for `gatewayd plan`: a
// unified diff of the two renderings followed by notes an operator must not
// miss (a zone losing a management service, a new implicit zone). Either may be
// nil (no ruleset). It returns "" when the renderings are equal.
func Diff(old, new *Ruleset) string {
	a, b := render(old), render(new)
	if a == b {
		return ""
	}
	var out strings.Builder
	out.WriteString("--- table inet gatewayd (running)\n+++ table inet gatewayd (new)\n")
	out.WriteString(unified(splitLines(a), splitLines(b)))
	for _, n := range diffNotes(old, new) {
		out.WriteString("note: " + n + "\n")
	}
	return out.String()
}

func render(r *Ruleset) string {
	if r == nil {
		return ""
	}
	return r.Render()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Notes says what an operator should know about r whatever it replaces:
// the zones Build made for alias subnets that no zone names.
func (r *Ruleset) Notes() []string {
	var out []string
	for _, z := range r.Zones {
		if z.Implicit {
			out = append(out, implicitNote(z))
		}
	}
	return out
}

func implicitNote(z ZoneInfo) string {
	return fmt.Sprintf("zone %s (%s) is implicit: no zone names this alias subnet, so it gets the closed default policy (add it to a [zone.<name>] to open it)",
		z.Name, prefixes(z.Subnets))
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// diffNotes warns about management access that old gives and new takes
// away (by source subnet or interface and by destination, so renaming a zone
// is no excuse), and about implicit zones new adds.
func diffNotes(old, new *Ruleset) []string {
	var notes []string
	seen := map[string]bool{}
	note := func(n string) {
		if !seen[n] {
			seen[n] = true
			notes = append(notes, n)
		}
	}
	if old != nil {
		for _, z := range old.Zones {
			for _, src := range sourcesOf(z) {
				nz := claimant(new, src)
				for _, a := range z.Access {
					if old.isManagement(a.Service, a.Port) && !reaches(nz, a) {
						note(lossNote(z.Name, src, a.Service, a.Port, a.Addr.String()))
					}
				}
				for _, m := range z.Manage {
					if !manages(nz, m.Port) {
						note(lossNote(z.Name, src, m.Service, m.Port, "the box's own addresses"))
					}
				}
			}
		}
	}
	if new != nil {
		was := map[string]bool{}
		if old != nil {
			for _, z := range old.Zones {
				was[z.Name] = z.Implicit
			}
		}
		for _, z := range new.Zones {
			if z.Implicit && !was[z.Name] {
				note(implicitNote(z))
			}
		}
	}
	return notes
}

var sshPort = PortRange{Proto: "tcp", From: 22, To: 22}

// isManagement reports whether a service the zone reaches is one the
// management setting names, or opens the SSH port whatever its name.
func (r *Ruleset) isManagement(service string, port PortRange) bool {
	return port.covers(sshPort) || slices.Contains(r.Management, service)
}

func lossNote(zone string, src source, service string, port PortRange, dst string) string {
	why := "it is a management service"
	if port.covers(sshPort) {
		why = "this may cut your own SSH session"
	}
	return fmt.Sprintf("zone %s (%s) loses %s (%s) to %s: %s", zone, src, service, port, dst, why)
}

// source is where a zone's traffic comes from: a subnet on the alias NIC or
// an interface.
type source struct {
	subnet netip.Prefix
	iface  string
}

func (s source) String() string {
	if s.iface != "" {
		return "interface " + s.iface
	}
	return s.subnet.String()
}

func sourcesOf(z ZoneInfo) []source {
	var out []source
	for _, sn := range z.Subnets {
		out = append(out, source{subnet: sn})
	}
	for _, ifc := range z.Interfaces {
		out = append(out, source{iface: ifc})
	}
	return out
}

// claimant is the zone of r that src's traffic falls in, as Build
// dispatches it (an interface first), or nil.
func claimant(r *Ruleset, src source) *ZoneInfo {
	if r == nil {
		return nil
	}
	iface := src.iface
	if iface == "" {
		iface = r.Interface
	}
	for i, z := range r.Zones {
		if slices.Contains(z.Interfaces, iface) {
			return &r.Zones[i]
		}
	}
	if src.iface != "" {
		return nil
	}
	for i, z := range r.Zones {
		for _, sn := range z.Subnets {
			if sn.Contains(src.subnet.Addr()) {
				return &r.Zones[i]
			}
		}
	}
	return nil
}

// reaches reports whether zone z reaches what a opens, on the same address.
func reaches(z *ZoneInfo, a Access) bool {
	if z == nil {
		return false
	}
	for _, b := range z.Access {
		if b.Addr == a.Addr && b.Port.covers(a.Port) {
			return true
		}
	}
	return false
}

// manages reports whether zone z reaches port on the box's own addresses.
func manages(z *ZoneInfo, port PortRange) bool {
	if z == nil {
		return false
	}
	for _, m := range z.Manage {
		if m.Port.covers(port) {
			return true
		}
	}
	return false
}

// edit is one line of a diff: ' ', '-' or '+'.
type edit struct {
	op   byte
	line string
}

// unified prints the line diff of a and b as unified-diff hunks.
func unified(a, b []string) string {
	edits := lineDiff(a, b)
	var out strings.Builder
	for i := 0; i < len(edits); {
		if edits[i].op == ' ' {
			i++
			continue
		}
		// A hunk: from diffContext lines before this change to
		// diffContext lines after the last change close to it.
		start := max(0, i-diffContext)
		end := i
		for j := i; j < len(edits); j++ {
			if edits[j].op != ' ' {
				end = j
			} else if j-end > 2*diffContext {
				break
			}
		}
		end = min(len(edits), end+diffContext+1)
		aLine, bLine := 1, 1
		for _, e := range edits[:start] {
			if e.op != '+' {
				aLine++
			}
			if e.op != '-' {
				bLine++
			}
		}
		var aN, bN int
		for _, e := range edits[start:end] {
			if e.op != '+' {
				aN++
			}
			if e.op != '-' {
				bN++
			}
		}
		// An empty side is numbered from the line before it, as diff -u does.
		if aN == 0 {
			aLine--
		}
		if bN == 0 {
			bLine--
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", aLine, aN, bLine, bN)
		for _, e := range edits[start:end] {
			out.WriteByte(e.op)
			out.WriteString(e.line)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

// lineDiff returns the edits from a to b: common prefix and suffix kept, the
// middle diffed with Myers' algorithm, or replaced whole past maxEdits.
func lineDiff(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []edit
	for _, l := range a[:pre] {
		out = append(out, edit{' ', l})
	}
	am, bm := a[pre:len(a)-suf], b[pre:len(b)-suf]
	mid, ok := myers(am, bm)
	if !ok {
		mid = nil
		for _, l := range am {
			mid = append(mid, edit{'-', l})
		}
		for _, l := range bm {
			mid = append(mid, edit{'+', l})
		}
	}
	out = append(out, mid...)
	for _, l := range a[len(a)-suf:] {
		out = append(out, edit{' ', l})
	}
	return out
}

// myers is the O(ND) diff; ok is false when more than maxEdits are needed.
func myers(a, b []string) ([]edit, bool) {
	n, m := len(a), len(b)
	maxD := min(n+m, maxEdits)
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int // trace[d]: v[-d..d] before step d
	for d := 0; d <= maxD; d++ {
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(a, b, trace, d), true
			}
		}
	}
	return nil, false
}

func backtrack(a, b []string, trace [][]int, d int) []edit {
	x, y := len(a), len(b)
	var rev []edit
	for ; d > 0; d-- {
		v := func(k int) int { return trace[d][k+d] }
		k := x - y
		var pk int
		if k == -d || (k != d && v(k-1) < v(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := v(pk)
		py := px - pk
		for x > px && y > py {
			x, y = x-1, y-1
			rev = append(rev, edit{' ', a[x]})
		}
		if x == px {
			y--
			rev = append(rev, edit{'+', b[y]})
		} else {
			x--
			rev = append(rev, edit{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, edit{' ', a[x]})
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}
