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
)

// status is `gatewayd status`: JSON as the daemon sent it (raw numbers), or
// text in human units.
func status(ctx context.Context, path string, asJSON bool, out io.Writer) error {
	resp, err := request(ctx, path, daemon.Request{Op: "status"}, 10*time.Second)
	if err != nil {
		return err
	}
	if asJSON {
		return indentJSON(out, resp.Data)
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
	// Version and Started are the daemon's release and start time, when the
	// daemon reports them.
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
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
	fmt.Fprintf(out, "\nconfig %s, generation %d, applied %s\n", v.Config, v.Generation, v.Applied.Local().Format("2006-01-02 15:04:05"))
	if v.Version != "" && v.Version != version {
		fmt.Fprintf(out, "note: this command is gatewayd %s; restart the daemon to run it\n", version)
	}
	if v.Degraded != "" {
		fmt.Fprintf(out, "DEGRADED: %s\n", v.Degraded)
	}
	writeAliases(out, v)
	writeZones(out, v)
	writeRouter(out, v.Router)
	writeDHCP(out, v.DHCP)
	writeDNS(out, v.DNS)
	for _, name := range slices.Sorted(maps.Keys(v.Other)) {
		fmt.Fprintf(out, "\n%s: %s\n", name, v.Other[name])
	}
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
	for _, rt := range r.Routes {
		fmt.Fprintf(tw, "  route\t%s\n", rt)
	}
	if r.Error != "" {
		fmt.Fprintf(tw, "  error\t%s\n", r.Error)
	}
	tw.Flush()
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
	fmt.Fprintf(out, "\ndhcp: serving on %s as %s\n", d.Interface, d.Address)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  leases\tactive %s, declined %s, offers held %s\n", num(uint64(d.Active)), num(uint64(d.Declined)), num(uint64(d.Offers)))
	for _, p := range d.Pools {
		fmt.Fprintf(tw, "  pool\t%s (%s): in use %s of %s, active %s\n", p.Range, p.Subnet, num(uint64(p.Used)), num(uint64(p.Size)), num(uint64(p.Active)))
	}
	c := d.Counters
	fmt.Fprintf(tw, "  received\t%s\n", namedCounts(c.In, dhcpTypes))
	fmt.Fprintf(tw, "  sent\t%s\n", namedCounts(c.Out, dhcpTypes))
	for _, kv := range []struct {
		name string
		n    uint64
	}{
		{"naks", c.Naks}, {"declines", c.Declines}, {"probe conflicts", c.Conflicts},
		{"pools full", c.NoAddress}, {"ignored", c.Ignored}, {"malformed", c.Malformed},
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
	if s.LastError != "" {
		fmt.Fprintf(tw, "  store error\t%s\n", s.LastError)
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
		{"truncated", d.Truncated}, {"rebind dropped", d.Rebind}, {"malformed", d.Malformed}, {"panics", d.Panics},
	} {
		fmt.Fprintf(tw, "  %s\t%s\n", kv.name, num(kv.n))
	}
	for _, u := range d.Upstreams {
		state := "healthy"
		if !u.Healthy {
			state = "failing"
		}
		scope := ""
		if u.Domain != "" {
			scope = " for " + u.Domain
		}
		rtt := "-"
		if u.RTTMilli > 0 {
			rtt = fmt.Sprintf("%.1f ms", u.RTTMilli)
		}
		fmt.Fprintf(tw, "  upstream\t%s%s: %s, queries %s, failures %s, rtt %s\n", u.Addr, scope, state, num(u.Queries), num(u.Failures), rtt)
	}
	tw.Flush()
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

func indentJSON(out io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
