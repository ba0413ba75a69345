package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	mdns "github.com/miekg/dns"

	"gatewayd/daemon"
	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
	"gatewayd/web"
)

// status is `gatewayd status`: JSON as the daemon sent it (raw numbers), or
// text in human units.
func status(ctx context.Context, path string, asJSON bool, out io.Writer) error {
	resp, err := request(ctx, path, daemon.Request{Op: "status"}, 10*time.Second)
	if err != nil {
		return err
	}
	if asJSON {
		b, err := web.IndentJSON(resp.Data)
		if err != nil {
			return fmt.Errorf("reading status: %w", err)
		}
		_, err = out.Write(b)
		return err
	}
	v, err := decodeStatus(resp.Data)
	if err != nil {
		return fmt.Errorf("reading status: %w", err)
	}
	writeStatus(out, v, time.Now())
	return nil
}

// statusView is the daemon's status with each part decoded into its own
// type, so the text can name every counter in a fixed order.
type statusView struct {
	daemon.Status
	Firewall *firewall.Counters
	FwError  string
	Router   *router.Status
	DNS      *dns.Status
	DHCP     *dhcp.Status
	// Other holds the parts this CLI does not know (a newer daemon's), as JSON.
	Other map[string]json.RawMessage
}

func decodeStatus(raw json.RawMessage) (*statusView, error) {
	v := &statusView{Other: map[string]json.RawMessage{}}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, err
	}
	var parts struct {
		Roles map[string]json.RawMessage `json:"roles"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, err
	}
	for name, b := range parts.Roles {
		var err error
		switch name {
		case "firewall":
			var e struct{ Error string }
			if json.Unmarshal(b, &e) == nil && e.Error != "" {
				v.FwError = e.Error
				continue
			}
			err = json.Unmarshal(b, &v.Firewall)
		case "router":
			err = json.Unmarshal(b, &v.Router)
		case "dns":
			err = json.Unmarshal(b, &v.DNS)
		case "dhcp":
			err = json.Unmarshal(b, &v.DHCP)
		default:
			v.Other[name] = b
		}
		if err != nil {
			return nil, fmt.Errorf("the %s part: %w", name, err)
		}
	}
	return v, nil
}

// writeStatus renders the status: the box, the aliases with their traffic,
// the zones, then each role, every counter on its own line, name first.
func writeStatus(out io.Writer, v *statusView, now time.Time) {
	head := "gatewayd"
	if v.Version != "" {
		head += " " + v.Version
	}
	fmt.Fprintf(out, "%s on %s, interface %s", head, v.Host, v.Interface)
	if !v.Started.IsZero() {
		fmt.Fprintf(out, ", up %s", human(now.Sub(v.Started)))
	}
	fmt.Fprintf(out, "\nconfig %s, generation %d, applied %s\n", v.Config, v.Generation, stamp(v.Applied))
	if v.Version != "" && v.Version != version {
		fmt.Fprintf(out, "note: this command is gatewayd %s; restart the daemon to run it\n", version)
	}
	if v.Degraded != "" {
		fmt.Fprintf(out, "DEGRADED: %s\n", v.Degraded)
	}
	if v.Confirm != nil {
		fmt.Fprintf(out, "UNCONFIRMED: the last reload is undone at %s%s unless `gatewayd confirm` runs first\n", stamp(*v.Confirm), until(*v.Confirm, now))
	}
	writeNIC(out, v)
	if len(v.Closed) > 0 {
		// The firewall drops everything arriving on them: say so, or a
		// forgotten zone looks like a dead cable.
		fmt.Fprintf(out, "closed interfaces: %s (no zone names them)\n", strings.Join(v.Closed, ", "))
	}
	writeRepairs(out, v, now)
	writeAliases(out, v)
	writeZones(out, v)
	writeRouter(out, v.Router)
	writeDHCP(out, v.DHCP)
	writeDNS(out, v.DNS)
	for _, name := range slices.Sorted(maps.Keys(v.Other)) {
		fmt.Fprintf(out, "\n%s: %s\n", name, v.Other[name])
	}
}

// writeNIC is the alias NIC as the kernel has it.
func writeNIC(out io.Writer, v *statusView) {
	n := v.NIC
	if n == nil {
		return
	}
	state := "absent"
	switch {
	case n.Present && n.Up:
		state = "present, up"
	case n.Present:
		state = "present, down"
	}
	if n.Waiting != "" {
		state += ", waiting: " + n.Waiting
	}
	if n.Error != "" {
		state += ", error: " + n.Error
	}
	fmt.Fprintf(out, "nic %s: %s\n", v.Interface, state)
}

// writeRepairs is what the drift loop put back, by kind.
func writeRepairs(out io.Writer, v *statusView, now time.Time) {
	if len(v.Repairs) == 0 {
		return
	}
	fmt.Fprintln(out, "repairs")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, kind := range slices.Sorted(maps.Keys(v.Repairs)) {
		r := v.Repairs[kind]
		text := "restores " + num(uint64(r.Restores))
		if !r.LastRestore.IsZero() {
			text += ", last " + stamp(r.LastRestore) + " (" + human(now.Sub(r.LastRestore)) + " ago)"
		}
		if r.Failing != "" {
			text += ", FAILING: " + r.Failing
		}
		fmt.Fprintf(tw, "  %s\t%s\n", kind, text)
	}
	tw.Flush()
}

// stamp is a time as the status prints it, in the local zone.
func stamp(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

// until is how long is left before t: " (in 4m00s)", or " (overdue)".
func until(t, now time.Time) string {
	if !t.After(now) {
		return " (overdue)"
	}
	return " (in " + human(t.Sub(now)) + ")"
}

func writeAliases(out io.Writer, v *statusView) {
	traffic := map[string]firewall.AliasCounters{}
	if v.Firewall != nil {
		for _, a := range v.Firewall.Aliases {
			traffic[a.Alias] = a
		}
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALIAS\tADDRESS\tLABEL\tSTATE\tIN\tOUT")
	for _, a := range v.Aliases {
		state := "up"
		switch {
		case !a.Held:
			state = "held by " + a.Host
		case a.Conflict != "":
			state = "conflict: " + a.Conflict
		case !a.Present && a.Waiting != "":
			state = "waiting: " + a.Waiting
		case !a.Present:
			state = "missing"
		}
		in, outc := "-", "-"
		if t, ok := traffic[a.Name]; ok {
			in, outc = count(t.In), count(t.Out)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Address, a.Label, state, in, outc)
	}
	tw.Flush()
}

func writeZones(out io.Writer, v *statusView) {
	if v.FwError != "" {
		fmt.Fprintf(out, "\nfirewall: %s\n", v.FwError)
		return
	}
	if v.Firewall == nil || len(v.Firewall.Zones) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tTO THIS BOX\tFORWARDED\tDROPPED")
	for _, z := range v.Firewall.Zones {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", z.Zone, count(z.In), count(z.Forward), count(z.Drop))
	}
	tw.Flush()
}

func writeRouter(out io.Writer, r *router.Status) {
	if r == nil {
		return
	}
	if !r.Held {
		fmt.Fprintf(out, "\nrouter: not held here\n")
	} else {
		fmt.Fprintf(out, "\nrouter: on %s, upstream %s, forwarding %s\n", r.Interface, orDash(r.Upstream), onOff(r.Forwarding))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if u := r.Uplink; u != nil {
		addr := "no address yet"
		if u.Address.IsValid() {
			addr = "address " + u.Address.String()
			if !u.Owned {
				addr += " (not gatewayd's: left alone)"
			}
		}
		if u.Gateway.IsValid() {
			addr += ", gateway " + u.Gateway.String()
		}
		fmt.Fprintf(tw, "  uplink\t%s: %s\n", u.Interface, addr)
		if l := u.DHCP; l != nil {
			fmt.Fprintf(tw, "  uplink lease\t%s\n", uplinkLease(l))
			if l.Error != "" {
				fmt.Fprintf(tw, "  uplink error\t%s\n", l.Error)
			}
		}
	}
	for _, rt := range r.Routes {
		fmt.Fprintf(tw, "  route\t%s\n", rt)
	}
	for _, p := range r.Pending {
		fmt.Fprintf(tw, "  pending\t%s: %s\n", p.What, p.Reason)
	}
	if r.Error != "" {
		fmt.Fprintf(tw, "  error\t%s\n", r.Error)
	}
	tw.Flush()
}

// uplinkLease is the WAN port's DHCP client: its state, then what of the
// lease it has.
func uplinkLease(l *router.LeaseStatus) string {
	parts := []string{l.State}
	if l.Server.IsValid() {
		parts = append(parts, "server "+l.Server.String())
	}
	for _, t := range []struct {
		name string
		at   time.Time
	}{{"acquired", l.Acquired}, {"renew", l.Renew}, {"rebind", l.Rebind}, {"expires", l.Expires}} {
		if !t.at.IsZero() {
			parts = append(parts, t.name+" "+stamp(t.at))
		}
	}
	parts = append(parts, "renewals "+num(uint64(l.Renewals)))
	if len(l.DNS) > 0 {
		dns := make([]string, len(l.DNS))
		for i, a := range l.DNS {
			dns[i] = a.String()
		}
		parts = append(parts, "dns "+strings.Join(dns, " "))
	}
	return strings.Join(parts, ", ")
}

// dhcpTypes are the message types in RFC 2132 order; others follow by name.
var dhcpTypes = []string{"discover", "offer", "request", "decline", "ack", "nak", "release", "inform"}

func writeDHCP(out io.Writer, d *dhcp.Status) {
	if d == nil {
		return
	}
	if !d.Running {
		fmt.Fprintf(out, "\ndhcp: not serving here\n")
		return
	}
	switch {
	case d.Waiting != "":
		fmt.Fprintf(out, "\ndhcp: WAITING on %s as %s: %s\n", d.Interface, d.Address, d.Waiting)
	case d.Store.Degraded:
		fmt.Fprintf(out, "\ndhcp: DEGRADED on %s as %s: no lease is granted or changed while the lease log cannot be written\n", d.Interface, d.Address)
	default:
		fmt.Fprintf(out, "\ndhcp: serving on %s as %s\n", d.Interface, d.Address)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  leases\tactive %s, declined %s, offers held %s\n", num(uint64(d.Active)), num(uint64(d.Declined)), num(uint64(d.Offers)))
	for _, p := range d.Pools {
		fmt.Fprintf(tw, "  pool\t%s (%s): in use %s of %s, active %s\n", p.Range, p.Subnet, num(uint64(p.Used)), num(uint64(p.Size)), num(uint64(p.Active)))
	}
	for _, p := range d.Pending {
		h := p.Holder
		holder := strings.Join(nonEmpty(h.MAC, h.ClientID, h.Hostname), ", ")
		if holder == "" {
			holder = "no client"
		}
		fmt.Fprintf(tw, "  reserved\t%s for %s: held by %s (%s until %s)\n", p.Address, strings.Join(nonEmpty(p.MAC, p.ClientID), ", "), holder, h.State, stamp(h.Expires))
	}
	c := d.Counters
	fmt.Fprintf(tw, "  received\t%s\n", namedCounts(c.In, dhcpTypes))
	fmt.Fprintf(tw, "  sent\t%s\n", namedCounts(c.Out, dhcpTypes))
	for _, kv := range []struct {
		name string
		n    uint64
	}{
		{"naks", c.Naks}, {"declines", c.Declines}, {"probe conflicts", c.Conflicts},
		{"pools full", c.NoAddress}, {"options dropped", c.OptionsDropped}, {"ignored", c.Ignored}, {"malformed", c.Malformed},
		{"send errors", c.SendErrors}, {"store errors", c.StoreErrors}, {"panics", c.Panics},
	} {
		fmt.Fprintf(tw, "  %s\t%s\n", kv.name, num(kv.n))
	}
	s := d.Store
	fmt.Fprintf(tw, "  lease log\t%s: records %s, size %s, commits %s, batches %s, compactions %s\n",
		s.Path, num(uint64(s.Records)), size(uint64(s.Bytes)), num(s.Commits), num(s.Batches), num(s.Compactions))
	if s.Recovered != "" {
		fmt.Fprintf(tw, "  recovered\t%s\n", s.Recovered)
	}
	if s.Backup != "" {
		fmt.Fprintf(tw, "  damaged log kept\t%s\n", s.Backup)
	}
	if s.LastError != "" {
		fmt.Fprintf(tw, "  store error\t%s (since %s, %s failed writes)\n", s.LastError, stamp(s.LastErrorTime), num(s.FailedWrites))
	}
	if s.CompactionError != "" {
		fmt.Fprintf(tw, "  compaction error\t%s\n", s.CompactionError)
	}
	tw.Flush()
}

// dnsStages are the stages that answer a query, in pipeline order.
var dnsStages = []string{"local", "special", "cache", "stale", "forward", "access", "overload", "server", "dropped"}

func writeDNS(out io.Writer, d *dns.Status) {
	if d == nil {
		return
	}
	if !d.Running {
		fmt.Fprintf(out, "\ndns: not serving here\n")
		return
	}
	fmt.Fprintf(out, "\ndns: serving on %s, domain %s\n", d.Addr, d.Domain)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  lease names\t%s\n", num(uint64(d.Leases)))
	fmt.Fprintf(tw, "  answered by\t%s\n", namedCounts(d.ByStage, dnsStages))
	fmt.Fprintf(tw, "  rcodes\t%s\n", namedCounts(d.ByRcode, rcodeOrder(d.ByRcode)))
	ca := d.Cache
	fmt.Fprintf(tw, "  cache\tentries %s of %s, hits %s, misses %s, merged %s, stale served %s, evictions %s\n",
		num(uint64(ca.Size)), num(uint64(ca.Capacity)), num(ca.Hits), num(ca.Misses), num(ca.Merged), num(ca.Stale), num(ca.Evictions))
	for _, kv := range []struct {
		name string
		n    uint64
	}{
		{"truncated", d.Truncated}, {"rebind dropped", d.Rebind}, {"replies unsent", d.Unsent}, {"malformed", d.Malformed}, {"panics", d.Panics},
	} {
		fmt.Fprintf(tw, "  %s\t%s\n", kv.name, num(kv.n))
	}
	f := d.Forward
	fmt.Fprintf(tw, "  forwarding\tretransmits %s, hedges %s, client retries %s, EDNS fallbacks %s, scrubbed %s, unwanted replies %s\n",
		num(f.Retransmits), num(f.Hedges), num(f.ClientRetries), num(f.EDNSFallbacks), num(f.Scrubbed), num(f.Unwanted))
	for _, u := range d.Upstreams {
		fmt.Fprintf(tw, "  upstream\t%s\n", upstream(u))
	}
	tw.Flush()
}

// upstream is one upstream server: its health, its counters, its timers.
func upstream(u dns.UpstreamStatus) string {
	state := "healthy"
	switch {
	case !u.Healthy:
		state = "failing"
	case u.Lossy:
		state = "lossy"
	}
	scope := ""
	if u.Domain != "" {
		scope = " for " + u.Domain
	}
	text := fmt.Sprintf("%s%s: %s, queries %s, failures %s, rtt %s, rto %s", u.Addr, scope, state, num(u.Queries), num(u.Failures), millis(u.RTTMilli), millis(u.RTOMilli))
	if u.PlainDNS {
		text += ", plain DNS (no EDNS)"
	}
	return text
}

// millis is a time in milliseconds to two or three digits: 1.2 ms, 250 ms.
func millis(ms float64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 9.95:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// rcodeOrder is the rcodes present, by code.
func rcodeOrder(m map[string]uint64) []string {
	names := slices.Collect(maps.Keys(m))
	sort.Slice(names, func(i, j int) bool {
		a, aok := mdns.StringToRcode[names[i]]
		b, bok := mdns.StringToRcode[names[j]]
		if aok != bok {
			return aok
		}
		if a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	return names
}

// namedCounts renders "name n, name n" in the given order, then any other
// names alphabetically; "none" when there are none.
func namedCounts(m map[string]uint64, order []string) string {
	var parts []string
	for _, k := range order {
		if n, ok := m[k]; ok {
			parts = append(parts, k+" "+num(n))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(order, k) {
			parts = append(parts, k+" "+num(m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func count(c firewall.Count) string {
	if c.Packets == 0 && c.Bytes == 0 {
		return "0"
	}
	return size(c.Bytes) + " (" + num(c.Packets) + " pkt)"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
