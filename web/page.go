package web

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
)

// maxLeaseRows bounds the lease table: the page stays small on a site with
// many clients, and `gatewayd leases` lists them all.
const maxLeaseRows = 500

// page is what the template renders.
type page struct {
	Now      time.Time
	Refresh  int // seconds; 0: no refresh
	Version  string
	St       Status
	Roles    []roleHealth
	Aliases  []aliasView
	Zones    []zoneView
	Pools    []poolView
	Leases   []leaseView
	NLeases  int // live leases, shown or not
	Sort     string
	DNSStage []kv
	DNSRcode []kv
}

type kv struct {
	Key   string
	Value uint64
}

// roleHealth is one role's line on the page and its role_* metrics.
type roleHealth struct {
	Name    string
	Held    bool
	Healthy bool
	State   string // "serving", "not held here", "error"
	Detail  string
}

type aliasView struct {
	Alias
	State   string
	In, Out firewall.Count
	Counted bool // the firewall has counters for it
	Chart   chart
}

type zoneView struct {
	Zone
	Policy   bool // a zone of the config (the upstream has counters only)
	Counters *firewall.ZoneCounters
}

type poolView struct {
	dhcp.PoolStatus
	Percent int
}

type leaseView struct {
	dhcp.Lease
	Client    string
	ExpiresIn string
}

// leaseSorts are the lease table's orders, by the query parameter's value.
var leaseSorts = map[string]func(a, b dhcp.Lease) int{
	"address": func(a, b dhcp.Lease) int { return a.Address.Compare(b.Address) },
	"name": func(a, b dhcp.Lease) int {
		unnamed := func(l dhcp.Lease) int { return b2i(l.Hostname == "") } // named first
		return cmp.Or(cmp.Compare(unnamed(a), unnamed(b)),
			cmp.Compare(strings.ToLower(a.Hostname), strings.ToLower(b.Hostname)), a.Address.Compare(b.Address))
	},
	"expiry": func(a, b dhcp.Lease) int { return cmp.Or(a.Expires.Compare(b.Expires), a.Address.Compare(b.Address)) },
}

// buildPage reads the source once and shapes it for the template.
func (s *Server) buildPage(q url.Values) page {
	now := s.now()
	st := s.src.Status()
	p := page{Now: now, Refresh: int(s.refresh / time.Second), Version: s.version, St: st, Roles: roleHealths(st)}
	p.Aliases = s.aliasViews(st, now)
	p.Zones = zoneViews(st)
	if st.DHCP != nil {
		for _, pool := range st.DHCP.Pools {
			pct := 0
			if pool.Size > 0 {
				pct = pool.Used * 100 / pool.Size
			}
			p.Pools = append(p.Pools, poolView{PoolStatus: pool, Percent: pct})
		}
		p.Sort, p.Leases, p.NLeases = leaseViews(s.src.Leases(), q.Get("sort"), now)
	}
	if st.DNS != nil {
		p.DNSStage, p.DNSRcode = sortedKV(st.DNS.ByStage), sortedKV(st.DNS.ByRcode)
	}
	return p
}

func (s *Server) aliasViews(st Status, now time.Time) []aliasView {
	counts := map[string]firewall.AliasCounters{}
	for _, c := range st.Firewall.Aliases {
		counts[c.Alias] = c
	}
	var out []aliasView
	for _, a := range st.Aliases {
		v := aliasView{Alias: a, State: aliasState(a)}
		if c, ok := counts[a.Name]; ok {
			v.In, v.Out, v.Counted = c.In, c.Out, true
			v.Chart = chartOf(s.hist.series(a.Name), now, s.hist.window)
		}
		out = append(out, v)
	}
	return out
}

// aliasState words an alias's state as `gatewayd status` does.
func aliasState(a Alias) string {
	switch {
	case !a.Held:
		return "held by " + a.Host
	case a.Conflict != "":
		return "conflict: " + a.Conflict
	case !a.Present:
		return "missing"
	}
	return "up"
}

// zoneViews joins each zone's policy to its counters; zones with counters
// but no policy (the upstream) come last.
func zoneViews(st Status) []zoneView {
	counts := map[string]*firewall.ZoneCounters{}
	for i := range st.Firewall.Zones {
		counts[st.Firewall.Zones[i].Zone] = &st.Firewall.Zones[i]
	}
	var out []zoneView
	for _, z := range st.Zones {
		out = append(out, zoneView{Zone: z, Policy: true, Counters: counts[z.Name]})
		delete(counts, z.Name)
	}
	for _, c := range st.Firewall.Zones {
		if counts[c.Zone] != nil {
			out = append(out, zoneView{Zone: Zone{Name: c.Zone}, Counters: counts[c.Zone]})
		}
	}
	return out
}

// leaseViews sorts the leases by the order asked for (address by default)
// and keeps the first maxLeaseRows.
func leaseViews(ls []dhcp.Lease, order string, now time.Time) (string, []leaseView, int) {
	if _, ok := leaseSorts[order]; !ok {
		order = "address"
	}
	ls = slices.Clone(ls)
	slices.SortStableFunc(ls, leaseSorts[order])
	n := len(ls)
	ls = ls[:min(n, maxLeaseRows)]
	out := make([]leaseView, 0, len(ls))
	for _, l := range ls {
		client := l.MAC
		if l.ClientID != "" {
			client = "id " + l.ClientID
		}
		out = append(out, leaseView{Lease: l, Client: client, ExpiresIn: untilText(l.Expires.Sub(now))})
	}
	return order, out, n
}

// roleHealths says, for each role the daemon has, whether it is held here
// and whether it reports a problem.
func roleHealths(st Status) []roleHealth {
	var out []roleHealth
	if r := st.Router; r != nil {
		h := roleHealth{Name: "router", Held: r.Held, Healthy: r.Error == ""}
		h.Detail = fmt.Sprintf("upstream %s, forwarding %s, %d owned routes", orDash(r.Upstream), onOff(r.Forwarding), len(r.Routes))
		h.State, h.Detail = roleState(h, r.Error, h.Detail)
		out = append(out, h)
	}
	if d := st.DNS; d != nil {
		up := 0
		for _, u := range d.Upstreams {
			if u.Healthy {
				up++
			}
		}
		h := roleHealth{Name: "dns", Held: d.Running, Healthy: len(d.Upstreams) == 0 || up > 0}
		h.Detail = fmt.Sprintf("on %s, domain %s, %d/%d upstreams healthy", orDash(d.Addr), orDash(d.Domain), up, len(d.Upstreams))
		problem := ""
		if !h.Healthy {
			problem = "no upstream is healthy"
		}
		h.State, h.Detail = roleState(h, problem, h.Detail)
		out = append(out, h)
	}
	if d := st.DHCP; d != nil {
		h := roleHealth{Name: "dhcp", Held: d.Running, Healthy: d.Store.LastError == "" && d.Waiting == "" && !d.Store.Degraded}
		addr := "-"
		if d.Address.IsValid() {
			addr = d.Address.String()
		}
		h.Detail = fmt.Sprintf("on %s, active leases %d, offers held %d", addr, d.Active, d.Offers)
		problem := d.Store.LastError
		switch {
		case d.Waiting != "":
			problem = "waiting: " + d.Waiting
		case d.Store.Degraded:
			problem = "the lease log cannot be written (" + d.Store.LastError + "): no lease is granted or changed"
		}
		h.State, h.Detail = roleState(h, problem, h.Detail)
		out = append(out, h)
	}
	return out
}

func roleState(h roleHealth, problem, detail string) (string, string) {
	switch {
	case problem != "":
		return "error", problem
	case !h.Held:
		return "not held here", ""
	}
	return "serving", detail
}

func sortedKV(m map[string]uint64) []kv {
	var out []kv
	for _, k := range sortedKeys(m) {
		out = append(out, kv{k, m[k]})
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// bytesText is a byte count in IEC units: "512 B", "1.5 KiB", "3.2 GiB".
func bytesText(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n), 0
	for v >= 1024 && unit < 6 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[unit-1])
}

// countText is a count with thin-space thousands separators.
func countText(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u2009")
		}
		b.WriteRune(r)
	}
	return b.String()
}

// untilText is a duration to come, rounded for reading: "in 11h58m", "expired".
func untilText(d time.Duration) string {
	if d <= 0 {
		return "expired"
	}
	if d < time.Minute {
		return "in " + d.Round(time.Second).String()
	}
	return "in " + strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// agoText is how long ago t was: "5m ago"; "never" for the zero time.
func agoText(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < time.Minute {
		return d.Round(time.Second).String() + " ago"
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s") + " ago"
}
