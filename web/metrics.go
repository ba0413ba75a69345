package web

import (
	"maps"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
)

// registry is the /metrics registry: gatewayd's own families, read from the
// source at scrape time, and the Go runtime's and the process's.
func registry(src Source) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// family is one metric family of the collector.
type family struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func newFamily(typ prometheus.ValueType, name, help string, labels ...string) family {
	return family{desc: prometheus.NewDesc("gatewayd_"+name, help, labels, nil), typ: typ}
}

func counter(name, help string, labels ...string) family {
	return newFamily(prometheus.CounterValue, name, help, labels...)
}

func gauge(name, help string, labels ...string) family {
	return newFamily(prometheus.GaugeValue, name, help, labels...)
}

// histogram families carry no value type: their metrics are const histograms.
func histogram(name, help string, labels ...string) family {
	return newFamily(prometheus.UntypedValue, name, help, labels...)
}

// The families. Every label takes its values from the config or from a
// fixed set (stages, rcodes, message types): none is per client or per name.
var (
	fBuild        = gauge("build_info", "Always 1; the labels say which gatewayd is running.", "version", "revision", "goversion")
	fGeneration   = gauge("config_generation", "The running generation: 1 after the first apply, +1 per reload that changed something.")
	fApplied      = gauge("config_applied_timestamp_seconds", "When the running generation was applied (Unix time).")
	fDegraded     = gauge("degraded", "1 when a failed reload could not return to the previous config.")
	fReloads      = counter("reloads_total", "Reloads asked for (gatewayd reload, SIGHUP), whatever their result.")
	fReloadFailed = counter("reloads_failed_total", "Reloads refused or failed; the running config was kept or is degraded.")
	fReloadOK     = gauge("reload_last_success_timestamp_seconds", "When the last reload succeeded (Unix time); absent before the first.")
	fRestores     = counter("restores_total", "Things gatewayd owns that the watches put back after someone else changed them.", "object")

	fAliasInfo     = gauge("alias_info", "Always 1; one per alias of the config, with its address, label and holder.", "alias", "address", "label", "host")
	fAliasHeld     = gauge("alias_held", "1 when this box holds the alias.", "alias")
	fAliasPresent  = gauge("alias_present", "1 when the alias's address is on the NIC.", "alias")
	fAliasConflict = gauge("alias_conflict", "1 when the alias's address is on the NIC but was not added by gatewayd.", "alias")
	fAliasPackets  = counter("alias_packets_total", "Packets to (in) and from (out) the alias, from the firewall's named counters.", "alias", "direction")
	fAliasBytes    = counter("alias_bytes_total", "Bytes to (in) and from (out) the alias, from the firewall's named counters.", "alias", "direction")
	fZonePackets   = counter("zone_packets_total", "Packets from the zone, each in one path: input (accepted to this box), forward (routed, of flows the zone opened), return (routed, the zone's replies to flows opened elsewhere), drop. Zone \"closed\" is what no zone claims (interfaces no zone names, IPv6 on the alias NIC); zone \"link\", path input only, what is accepted before any zone can claim it (neighbour and router discovery, MLD queries, DHCP DISCOVERs).", "zone", "path")
	fZoneBytes     = counter("zone_bytes_total", "Bytes from the zone, by path as for gatewayd_zone_packets_total: input, forward, return, drop; zones \"closed\" and \"link\" likewise.", "zone", "path")

	fRoleHeld    = gauge("role_held", "1 when the role is held (serving) on this box.", "role")
	fRoleHealthy = gauge("role_healthy", "1 when the role (or the firewall) reports no error.", "role")

	fRouterForwarding = gauge("router_forwarding", "1 when net.ipv4.ip_forward was left on by the router role.")
	fRouterRoutes     = gauge("router_owned_routes", "Routes gatewayd owns (proto 177).")

	fDHCPReceived   = counter("dhcp_received_total", "DHCP messages received, by message type.", "type")
	fDHCPSent       = counter("dhcp_sent_total", "DHCP messages sent, by message type.", "type")
	fDHCPOutcomes   = counter("dhcp_outcomes_total", "DHCP exchanges that did not end in an offer or ack, by outcome.", "outcome")
	fDHCPLeases     = gauge("dhcp_leases", "Live bindings by state: active leases, declined (quarantined) addresses, held offers.", "state")
	fPoolSize       = gauge("dhcp_pool_addresses", "Addresses in the pool.", "pool", "subnet")
	fPoolUsed       = gauge("dhcp_pool_used_addresses", "Pool addresses leased, offered, declined or reserved for a static lease.", "pool", "subnet")
	fPoolActive     = gauge("dhcp_pool_active_leases", "Active leases in the pool.", "pool", "subnet")
	fStoreCommits   = counter("dhcp_lease_store_commits_total", "Lease records made durable.")
	fStoreBatches   = counter("dhcp_lease_store_batches_total", "Durable writes (one fsync each) of the lease log; commits/batches is the mean batch size.")
	fStoreCompacts  = counter("dhcp_lease_store_compactions_total", "Rewrites of the lease log.")
	fStoreRecords   = gauge("dhcp_lease_store_records", "Records in the lease log.")
	fStoreBytes     = gauge("dhcp_lease_store_bytes", "Size of the lease log.")
	fStoreFsync     = histogram("dhcp_lease_store_fsync_duration_seconds", "Time to make one lease batch durable.")
	fStoreBatchSize = histogram("dhcp_lease_store_batch_records", "Records per durable write of the lease log.")

	fDNSQueries     = counter("dns_queries_total", "DNS queries, by the stage that answered them (dropped: no reply).", "stage")
	fDNSResponses   = counter("dns_responses_total", "DNS replies, by response code.", "rcode")
	fDNSProblems    = counter("dns_problems_total", "DNS queries that went wrong, by kind: malformed, panic, truncated (TC sent), rebind (answer records dropped), unsent (a reply the kernel would not take: a full send buffer, a refused destination).", "kind")
	fDNSLeaseNames  = gauge("dns_lease_names", "DHCP hostnames published in the local zone.")
	fDNSDuration    = histogram("dns_query_duration_seconds", "Time from a query's arrival to its reply, by the stage that answered.", "stage")
	fCacheEntries   = gauge("dns_cache_entries", "Answers in the cache.")
	fCacheCapacity  = gauge("dns_cache_capacity_entries", "Answers the cache holds at most.")
	fCacheHits      = counter("dns_cache_hits_total", "Queries answered from the cache.")
	fCacheMisses    = counter("dns_cache_misses_total", "Queries the cache could not answer.")
	fCacheStale     = counter("dns_cache_stale_served_total", "Expired answers served while the upstreams failed.")
	fCacheMerged    = counter("dns_cache_merged_total", "Misses that waited for an identical query in flight.")
	fCacheEvictions = counter("dns_cache_evictions_total", "Answers evicted to make room.")
	fUpQueries      = counter("dns_upstream_queries_total", "Queries sent to the upstream.", "upstream", "domain")
	fUpFailures     = counter("dns_upstream_failures_total", "Queries to the upstream that failed.", "upstream", "domain")
	fUpRTT          = gauge("dns_upstream_rtt_seconds", "The upstream's smoothed round-trip time.", "upstream", "domain")
	fDNSForward     = counter("dns_forward_events_total", "What forwarding did besides asking once: retransmit, hedge (asked the next upstream), client_retry (a client's retry asked again), edns_fallback, scrubbed (answer records dropped), timeout (every upstream silent), unwanted_reply (a datagram from an upstream answering nothing asked: spoofing signs).", "event")
	fUpHealthy      = gauge("dns_upstream_healthy", "1 when the upstream is considered healthy.", "upstream", "domain")
)

var families = []family{
	fBuild, fGeneration, fApplied, fDegraded, fReloads, fReloadFailed, fReloadOK, fRestores,
	fAliasInfo, fAliasHeld, fAliasPresent, fAliasConflict, fAliasPackets, fAliasBytes, fZonePackets, fZoneBytes,
	fRoleHeld, fRoleHealthy, fRouterForwarding, fRouterRoutes,
	fDHCPReceived, fDHCPSent, fDHCPOutcomes, fDHCPLeases, fPoolSize, fPoolUsed, fPoolActive,
	fStoreCommits, fStoreBatches, fStoreCompacts, fStoreRecords, fStoreBytes, fStoreFsync, fStoreBatchSize,
	fDNSQueries, fDNSResponses, fDNSProblems, fDNSLeaseNames, fDNSDuration,
	fCacheEntries, fCacheCapacity, fCacheHits, fCacheMisses, fCacheStale, fCacheMerged, fCacheEvictions,
	fDNSForward, fUpQueries, fUpFailures, fUpRTT, fUpHealthy,
}

// collector reads the source once per scrape: the figures are the roles'
// own counters at that moment, never copies kept on a timer.
type collector struct {
	src   Source
	build [3]string
}

func newCollector(src Source) *collector {
	return &collector{src: src, build: buildInfo()}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		ch <- f.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	e := emitter{ch}
	e.emit(fBuild, 1, c.build[:]...)
	c.collectDaemon(e, st)
	collectAliases(e, st)
	collectRoles(e, st)
	if st.DHCP != nil {
		collectDHCP(e, st.DHCP, st.Histograms)
	}
	if st.DNS != nil {
		collectDNS(e, st.DNS, st.Histograms)
	}
}

// emitter sends const metrics of the families above.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) emit(f family, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(f.desc, f.typ, v, labels...)
}

func (e emitter) flag(f family, b bool, labels ...string) {
	e.emit(f, b01(b), labels...)
}

func (e emitter) histogram(f family, h *Histogram, labels ...string) {
	if h == nil || (h.Count == 0 && len(h.Buckets) == 0) {
		return
	}
	m, err := prometheus.NewConstHistogram(f.desc, h.Count, h.Sum, h.Buckets, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(f.desc, err)
	}
	e.ch <- m
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func b01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) collectDaemon(e emitter, st Status) {
	e.emit(fGeneration, float64(st.Generation))
	if !st.Applied.IsZero() {
		e.emit(fApplied, unix(st.Applied))
	}
	e.flag(fDegraded, st.Degraded != "")
	e.emit(fReloads, float64(st.Reloads.Total))
	e.emit(fReloadFailed, float64(st.Reloads.Failed))
	if !st.Reloads.LastSuccess.IsZero() {
		e.emit(fReloadOK, unix(st.Reloads.LastSuccess))
	}
	for _, object := range slices.Sorted(maps.Keys(st.Restores)) {
		e.emit(fRestores, float64(st.Restores[object]), object)
	}
}

// zonePaths are the zone counters' paths; a new kind of counter in
// firewall.ZoneCounters is one more line here.
var zonePaths = []struct {
	name  string
	count func(z firewall.ZoneCounters) firewall.Count
}{
	{"input", func(z firewall.ZoneCounters) firewall.Count { return z.In }},
	{"forward", func(z firewall.ZoneCounters) firewall.Count { return z.Forward }},
	{"return", func(z firewall.ZoneCounters) firewall.Count { return z.Return }},
	{"drop", func(z firewall.ZoneCounters) firewall.Count { return z.Drop }},
}

func collectAliases(e emitter, st Status) {
	for _, a := range st.Aliases {
		e.emit(fAliasInfo, 1, a.Name, a.Address, a.Label, a.Host)
		e.flag(fAliasHeld, a.Held, a.Name)
		e.flag(fAliasPresent, a.Present, a.Name)
		e.flag(fAliasConflict, a.Conflict != "", a.Name)
	}
	if st.FirewallErr != "" {
		return // no figures rather than zeros
	}
	for _, a := range st.Firewall.Aliases {
		for _, d := range []struct {
			dir string
			c   firewall.Count
		}{{"in", a.In}, {"out", a.Out}} {
			e.emit(fAliasPackets, float64(d.c.Packets), a.Alias, d.dir)
			e.emit(fAliasBytes, float64(d.c.Bytes), a.Alias, d.dir)
		}
	}
	if len(st.Firewall.Zones) == 0 {
		return // no table yet (it always counts the upstream): no figures rather than zeros
	}
	// What no zone claims is counted as the pseudo-zone "closed", and what
	// is accepted before any zone can claim it (neighbour discovery, DHCP
	// DISCOVERs) as "link"; config refuses zones of those names.
	closed := st.Firewall.Closed
	closed.Zone = "closed"
	for _, z := range append(slices.Clone(st.Firewall.Zones), closed) {
		for _, p := range zonePaths {
			c := p.count(z)
			e.emit(fZonePackets, float64(c.Packets), z.Zone, p.name)
			e.emit(fZoneBytes, float64(c.Bytes), z.Zone, p.name)
		}
	}
	e.emit(fZonePackets, float64(st.Firewall.Link.Packets), "link", "input")
	e.emit(fZoneBytes, float64(st.Firewall.Link.Bytes), "link", "input")
}

func collectRoles(e emitter, st Status) {
	e.flag(fRoleHeld, true, "firewall")
	e.flag(fRoleHealthy, st.FirewallErr == "", "firewall")
	for _, r := range roleHealths(st) {
		e.flag(fRoleHeld, r.Held, r.Name)
		e.flag(fRoleHealthy, r.Healthy, r.Name)
	}
	if r := st.Router; r != nil {
		e.flag(fRouterForwarding, r.Forwarding)
		e.emit(fRouterRoutes, float64(len(r.Routes)))
	}
}

// dhcpOutcomes are the DHCP counters that end an exchange otherwise than
// with an offer or an ack.
var dhcpOutcomes = []struct {
	name  string
	count func(c dhcp.Counters) uint64
}{
	{"malformed", func(c dhcp.Counters) uint64 { return c.Malformed }},
	{"ignored", func(c dhcp.Counters) uint64 { return c.Ignored }},
	{"no_address", func(c dhcp.Counters) uint64 { return c.NoAddress }},
	{"nak", func(c dhcp.Counters) uint64 { return c.Naks }},
	{"decline", func(c dhcp.Counters) uint64 { return c.Declines }},
	{"conflict", func(c dhcp.Counters) uint64 { return c.Conflicts }},
	{"panic", func(c dhcp.Counters) uint64 { return c.Panics }},
	{"send_error", func(c dhcp.Counters) uint64 { return c.SendErrors }},
	{"store_error", func(c dhcp.Counters) uint64 { return c.StoreErrors }},
}

func collectDHCP(e emitter, s *dhcp.Status, h Histograms) {
	for _, d := range []struct {
		f  family
		by map[string]uint64
	}{{fDHCPReceived, s.Counters.In}, {fDHCPSent, s.Counters.Out}} {
		by := knownTypes(d.by)
		for _, k := range sortedKeys(by) {
			e.emit(d.f, float64(by[k]), k)
		}
	}
	for _, o := range dhcpOutcomes {
		e.emit(fDHCPOutcomes, float64(o.count(s.Counters)), o.name)
	}
	e.emit(fDHCPLeases, float64(s.Active), "active")
	e.emit(fDHCPLeases, float64(s.Declined), "declined")
	e.emit(fDHCPLeases, float64(s.Offers), "offered")
	seen := map[string]bool{}
	for _, p := range s.Pools {
		if seen[p.Range] {
			continue // the config refuses overlapping pools; never emit a duplicate series
		}
		seen[p.Range] = true
		e.emit(fPoolSize, float64(p.Size), p.Range, p.Subnet)
		e.emit(fPoolUsed, float64(p.Used), p.Range, p.Subnet)
		e.emit(fPoolActive, float64(p.Active), p.Range, p.Subnet)
	}
	e.emit(fStoreCommits, float64(s.Store.Commits))
	e.emit(fStoreBatches, float64(s.Store.Batches))
	e.emit(fStoreCompacts, float64(s.Store.Compactions))
	e.emit(fStoreRecords, float64(s.Store.Records))
	e.emit(fStoreBytes, float64(s.Store.Bytes))
	e.histogram(fStoreFsync, h.LeaseFsync)
	e.histogram(fStoreBatchSize, h.LeaseBatch)
}

// knownTypes folds the message types no RFC names ("unknown (200)": a
// client chooses the byte) into "other", so a client cannot add series.
func knownTypes(by map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(by))
	for k, v := range by {
		if strings.HasPrefix(k, "unknown") {
			k = "other"
		}
		out[k] += v
	}
	return out
}

func collectDNS(e emitter, s *dns.Status, h Histograms) {
	for _, k := range sortedKeys(s.ByStage) {
		e.emit(fDNSQueries, float64(s.ByStage[k]), k)
	}
	for _, k := range sortedKeys(s.ByRcode) {
		e.emit(fDNSResponses, float64(s.ByRcode[k]), k)
	}
	e.emit(fDNSProblems, float64(s.Malformed), "malformed")
	e.emit(fDNSProblems, float64(s.Panics), "panic")
	e.emit(fDNSProblems, float64(s.Truncated), "truncated")
	e.emit(fDNSProblems, float64(s.Rebind), "rebind")
	e.emit(fDNSProblems, float64(s.Unsent), "unsent")
	e.emit(fDNSLeaseNames, float64(s.Leases))
	for _, k := range sortedKeys(h.DNSQuery) {
		e.histogram(fDNSDuration, h.DNSQuery[k], k)
	}
	c := s.Cache
	e.emit(fCacheEntries, float64(c.Size))
	e.emit(fCacheCapacity, float64(c.Capacity))
	e.emit(fCacheHits, float64(c.Hits))
	e.emit(fCacheMisses, float64(c.Misses))
	e.emit(fCacheStale, float64(c.Stale))
	e.emit(fCacheMerged, float64(c.Merged))
	e.emit(fCacheEvictions, float64(c.Evictions))
	f := s.Forward
	for _, ev := range []struct {
		name string
		n    uint64
	}{
		{"retransmit", f.Retransmits}, {"hedge", f.Hedges}, {"client_retry", f.ClientRetries}, {"edns_fallback", f.EDNSFallbacks},
		{"scrubbed", f.Scrubbed}, {"timeout", f.Timeouts}, {"unwanted_reply", f.Unwanted},
	} {
		e.emit(fDNSForward, float64(ev.n), ev.name)
	}
	seen := map[[2]string]bool{}
	for _, u := range s.Upstreams {
		key := [2]string{u.Addr, u.Domain}
		if seen[key] {
			continue
		}
		seen[key] = true
		e.emit(fUpQueries, float64(u.Queries), u.Addr, u.Domain)
		e.emit(fUpFailures, float64(u.Failures), u.Addr, u.Domain)
		e.emit(fUpRTT, u.RTTMilli/1000, u.Addr, u.Domain)
		e.flag(fUpHealthy, u.Healthy, u.Addr, u.Domain)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// buildInfo is the version, VCS revision and Go version of this binary.
func buildInfo() [3]string {
	out := [3]string{"unknown", "unknown", "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	out[0], out[2] = strings.Trim(bi.Main.Version, "()"), bi.GoVersion
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			out[1] = s.Value
		}
	}
	return out
}
