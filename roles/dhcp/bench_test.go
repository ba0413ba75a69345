package dhcp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// The DHCP benchmark: perfdhcp full exchanges (DISCOVER-OFFER-REQUEST-ACK)
// against gatewayd, kea-dhcp4 (memfile) and dnsmasq, in the same lab and
// the same run, each server pinned to one core and perfdhcp to the other.
// Every server gets a fresh lease database for every run. Run it as root:
//
//	go test -run '^$' -bench BenchmarkPeers -benchtime 1x ./roles/dhcp/
//
// Four parts, in this order (BENCH_PARTS picks some: "storm,cpu"):
//
//   - storm: fresh clients (BENCH_STORM_CLIENTS, default 400,000: nearly
//     every exchange a new lease, the storm after a power cut) at rising
//     rates (BENCH_STORM_RATES); the score is the most ACK/s at ≤ 1 %
//     drops.
//   - share: the storm again with each server held to BENCH_SHARE percent
//     of one core (default 25, benchshare_test.go), so that the servers,
//     not perfdhcp, run out first (BENCH_SHARE_RATES).
//   - cpu: the server's CPU time (user + system, /proc) per completed
//     exchange at a fixed rate (BENCH_CPU_RATE, default 4000/s) with fresh
//     clients.
//   - renew: 1000 clients (BENCH_CLIENTS) at rising rates (BENCH_RATES):
//     a site's steady state where most exchanges renew a known lease.
//   - rss: gatewayd's and Kea's resident memory holding 400,000 leases.
//
// BENCH_PERIOD (seconds per run), BENCH_ROUNDS (repeat each part; a
// server keeps its best run of each rate), BENCH_SERVERS
// ("gatewayd,kea-dhcp4") and BENCH_PROFILE (a directory for gatewayd's CPU
// profiles, one per run) tune it.

// benchParts are the parts BENCH_PARTS asks for, all by default.
func benchParts() map[string]bool {
	parts := map[string]bool{"storm": true, "share": true, "cpu": true, "renew": true, "rss": true}
	if s := os.Getenv("BENCH_PARTS"); s != "" {
		clear(parts)
		for _, p := range strings.Split(s, ",") {
			parts[strings.TrimSpace(p)] = true
		}
	}
	return parts
}

// envInts reads a comma-separated list of numbers, or def.
func envInts(name string, def []int) []int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	return out
}

func envInt(name string, def int) int { return envInts(name, []int{def})[0] }

// stormClients is how many distinct clients the storm and cpu parts use.
const stormClients = 400000

// rssLeases is how many leases the rss part loads.
const rssLeases = 400000

// BenchmarkPeers is the DHCP benchmark (see the top of this file). The
// servers take turns at each rate, so a noisy neighbour on a shared machine
// hits them alike.
func BenchmarkPeers(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the DHCP benchmark needs root for its namespaces")
	}
	lab.RequireTools(b, "perfdhcp", "kea-dhcp4", "dnsmasq", "ss", "taskset")
	parts := benchParts()
	for range b.N {
		l := lab.New(b)
		n := newPerfNet(b, l)
		n.rcvbuf = buildRcvbufShim(b, b.TempDir())
		bl := &benchLab{b: b, n: n, period: envInt("BENCH_PERIOD", 5), rounds: envInt("BENCH_ROUNDS", 1)}
		var sum []string
		if parts["storm"] {
			sum = append(sum, bl.storm())
		}
		if parts["share"] {
			sum = append(sum, bl.shared())
		}
		if parts["cpu"] {
			sum = append(sum, bl.cpu())
		}
		if parts["renew"] {
			sum = append(sum, bl.renew())
		}
		if parts["rss"] {
			sum = append(sum, bl.rss()...)
		}
		report("")
		for _, s := range sum {
			report("%s", s)
		}
		l.Close()
	}
}

// benchLab runs the parts in one lab.
type benchLab struct {
	b              *testing.B
	n              *perfNet
	period, rounds int
}

// servers are the servers of BENCH_SERVERS among the names given.
func servers(names ...string) []benchServer {
	var out []benchServer
	for _, srv := range benchServers {
		only := os.Getenv("BENCH_SERVERS")
		if strings.Contains(","+strings.Join(names, ",")+",", ","+srv.name+",") &&
			(only == "" || strings.Contains(","+only+",", ","+srv.name+",")) {
			out = append(out, srv)
		}
	}
	return out
}

// ladder runs every server at every rate, rounds times, and returns each
// server's best completed rate within the drop limit.
func (bl *benchLab) ladder(part string, srvs []benchServer, rates []int, clients int) map[string]float64 {
	results := map[string]map[int]perfResult{}
	for _, srv := range srvs {
		results[srv.name] = map[int]perfResult{}
	}
	report("%s: %d distinct clients, %d s per run", part, clients, bl.period)
	report("%-10s %7s %9s %8s %8s %12s %11s", "server", "rate", "ACK/s", "drop DO", "drop RA", "µs/exchange", "perf-rcvbuf")
	for round := range bl.rounds {
		for _, rate := range rates {
			for _, srv := range srvs {
				tag := fmt.Sprintf("%s-%d-r%d", part, rate, round+1)
				res := benchOne(bl.b, bl.n, srv, rate, bl.period, clients, tag)
				u, s := res.perExchange()
				report("%-10s %7d %9.0f %7.2f%% %7.2f%% %12.1f %11d   (round %d)", srv.name, rate, res.completed, res.dropDO, res.dropRA,
					micros(u+s), res.rcvbufErr, round+1)
				if old, ok := results[srv.name][rate]; !ok || better(res, old) {
					results[srv.name][rate] = res
				}
			}
		}
	}
	best := map[string]float64{}
	for _, srv := range srvs {
		for _, res := range results[srv.name] {
			if res.ok() && res.completed > best[srv.name] {
				best[srv.name] = res.completed
			}
		}
		bl.b.ReportMetric(best[srv.name], srv.name+"-"+part+"-ack/s")
	}
	return best
}

// storm is the fresh-client ladder.
func (bl *benchLab) storm() string {
	rates := envInts("BENCH_STORM_RATES", []int{5000, 8000, 10000, 12000, 14000, 16000, 20000, 25000, 30000, 35000, 40000})
	best := bl.ladder("storm", servers("gatewayd", "kea-dhcp4"), rates, envInt("BENCH_STORM_CLIENTS", stormClients))
	if best["kea-dhcp4"] > 0 {
		bl.b.ReportMetric(best["gatewayd"]/best["kea-dhcp4"], "x-kea-storm")
	}
	return fmt.Sprintf("fresh clients, ACK/s at <=1%% drops: gatewayd %.0f (every ACK fdatasynced), kea-dhcp4 %.0f (memfile, no fsync); %s",
		best["gatewayd"], best["kea-dhcp4"], versusKea(best))
}

// shared is the fresh-client ladder with every server held to the same
// share of a core.
func (bl *benchLab) shared() string {
	percent := envInt("BENCH_SHARE", 25)
	bl.n.share = newCPUShare(bl.b, percent)
	if bl.n.share == nil {
		return "fresh clients on a share of a core: not run (no cpu controller to use)"
	}
	defer func() { bl.n.share = nil }()
	rates := envInts("BENCH_SHARE_RATES", []int{1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000})
	report("share: every server held to %d%% of one core", percent)
	best := bl.ladder("share", servers("gatewayd", "kea-dhcp4"), rates, envInt("BENCH_STORM_CLIENTS", stormClients))
	if best["kea-dhcp4"] > 0 {
		bl.b.ReportMetric(best["gatewayd"]/best["kea-dhcp4"], "x-kea-share")
	}
	return fmt.Sprintf("fresh clients, each server on %d%% of a core, ACK/s at <=1%% drops: gatewayd %.0f, kea-dhcp4 %.0f; %s",
		percent, best["gatewayd"], best["kea-dhcp4"], versusKea(best))
}

// versusKea is gatewayd's score as a ratio to Kea's, or says there is none
// when Kea passed no rate of the ladder (its lowest rate is then too high).
func versusKea(best map[string]float64) string {
	if best["kea-dhcp4"] == 0 {
		return "no ratio: kea-dhcp4 passed no rate of this ladder"
	}
	return fmt.Sprintf("gatewayd/kea %.2f", best["gatewayd"]/best["kea-dhcp4"])
}

// renew is the steady-state ladder of a small client population.
func (bl *benchLab) renew() string {
	rates := envInts("BENCH_RATES", []int{1000, 2000, 4000, 6000, 8000, 10000, 12000, 15000, 20000, 25000, 30000, 35000})
	best := bl.ladder("renew", servers("gatewayd", "kea-dhcp4", "dnsmasq"), rates, envInt("BENCH_CLIENTS", 1000))
	if best["kea-dhcp4"] > 0 {
		bl.b.ReportMetric(best["gatewayd"]/best["kea-dhcp4"], "x-kea-renew")
	}
	return fmt.Sprintf("renewals, ACK/s at <=1%% drops: gatewayd %.0f, kea-dhcp4 %.0f, dnsmasq %.0f (fsync per lease); %s",
		best["gatewayd"], best["kea-dhcp4"], best["dnsmasq"], versusKea(best))
}

// cpu measures CPU per exchange at a fixed rate with fresh clients; each
// server keeps its lowest run.
func (bl *benchLab) cpu() string {
	rate := envInt("BENCH_CPU_RATE", 4000)
	period := max(bl.period, 10)
	srvs := servers("gatewayd", "kea-dhcp4")
	report("cpu: %d/s, %d distinct clients, %d s per run", rate, stormClients, period)
	report("%-10s %9s %8s %8s %10s %10s %10s %10s", "server", "ACK/s", "drop DO", "drop RA", "user µs", "sys µs", "total µs", "switches")
	best := map[string]time.Duration{}
	split := map[string][2]time.Duration{}
	for round := range bl.rounds {
		for _, srv := range srvs {
			res := benchOne(bl.b, bl.n, srv, rate, period, envInt("BENCH_STORM_CLIENTS", stormClients), fmt.Sprintf("cpu-%d-r%d", rate, round+1))
			u, s := res.perExchange()
			report("%-10s %9.0f %7.2f%% %7.2f%% %10.1f %10.1f %10.1f %10.2f   (round %d)", srv.name, res.completed, res.dropDO, res.dropRA,
				micros(u), micros(s), micros(u+s), float64(res.switches)/float64(max(res.acks, 1)), round+1)
			if old, ok := best[srv.name]; res.acks > 0 && (!ok || u+s < old) {
				best[srv.name], split[srv.name] = u+s, [2]time.Duration{u, s}
			}
		}
	}
	for name, d := range best {
		bl.b.ReportMetric(micros(d), name+"-µs/exchange")
	}
	g, k := split["gatewayd"], split["kea-dhcp4"]
	ratio := 0.0
	if best["kea-dhcp4"] > 0 {
		ratio = float64(best["gatewayd"]) / float64(best["kea-dhcp4"])
	}
	return fmt.Sprintf("CPU per exchange at %d/s, fresh clients: gatewayd %.1f µs (%.1f user + %.1f sys), kea-dhcp4 %.1f µs (%.1f + %.1f); gatewayd/kea %.2f",
		rate, micros(g[0]+g[1]), micros(g[0]), micros(g[1]), micros(k[0]+k[1]), micros(k[0]), micros(k[1]), ratio)
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// rss loads rssLeases leases into each server, serves perfdhcp for a few
// seconds and reads its resident memory.
func (bl *benchLab) rss() []string {
	var out []string
	for _, srv := range servers("gatewayd", "kea-dhcp4") {
		dir := bl.b.TempDir()
		switch srv.name {
		case "gatewayd":
			writeLeaseLog(bl.b, dir, rssLeases)
		case "kea-dhcp4":
			writeKeaLeases(bl.b, dir, rssLeases)
		}
		cmd, err := srv.start(bl.b, bl.n, dir, "rss")
		if err != nil {
			bl.b.Fatalf("starting %s: %v", srv.name, err)
		}
		if _, err := runPerf(bl.n, 1000, 3, stormClients); err != nil {
			bl.b.Fatal(err)
		}
		rss, hwm := memory(cmd.Process.Pid)
		stopServer(cmd)
		bl.b.ReportMetric(float64(rss)/1024, srv.name+"-MiB-rss-400k")
		out = append(out, fmt.Sprintf("%s with %d leases: RSS %.1f MiB (peak %.1f MiB)", srv.name, rssLeases, float64(rss)/1024, float64(hwm)/1024))
	}
	return out
}

// writeLeaseLog writes a lease log of n active leases, each with a host
// name, into state dir dir.
func writeLeaseLog(tb testing.TB, dir string, n int) {
	st, _, err := openStore(filepath.Join(dir, "dhcp"), quietLog(), storeOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	start := addrU32(mustAddr(perfFirst))
	exp := time.Now().Add(12 * time.Hour).Unix()
	batch := make([]*binding, 0, n)
	for i := range n {
		batch = append(batch, &binding{addr: start + uint32(i), state: bindActive, expires: exp,
			mac: string(benchMAC(i)), hostname: fmt.Sprintf("host-%d", i)})
	}
	if err := st.commit(batch); err != nil {
		tb.Fatal(err)
	}
	st.close()
}

func benchMAC(i int) []byte {
	return []byte{0x02, 0x50, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// writeKeaLeases writes Kea's memfile (leases4.csv, the columns of Kea
// 2.2) with the same n leases.
func writeKeaLeases(tb testing.TB, dir string, n int) {
	var sb strings.Builder
	sb.WriteString("address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n")
	start := addrU32(mustAddr(perfFirst))
	exp := time.Now().Add(12 * time.Hour).Unix()
	for i := range n {
		fmt.Fprintf(&sb, "%s,%s,,43200,%d,1,0,0,host-%d,0,\n", u32Addr(start+uint32(i)), macString(benchMAC(i)), exp, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "kea-leases4.csv"), []byte(sb.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// report prints a line of the benchmark's tables on stdout (benchmark logs
// are cut short).
func report(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// better prefers a run within the drop limit, then more completed exchanges.
func better(a, b perfResult) bool {
	if a.ok() != b.ok() {
		return a.ok()
	}
	return a.completed > b.completed
}

// BenchmarkExchange: the handler's cost of a DISCOVER and a REQUEST from a
// fresh client (perfdhcp's: relayed, client id 01+MAC, parameter list 1 3
// 6), the lease log and sockets aside.
func BenchmarkExchange(b *testing.B) {
	hs := newHarness(b, benchConfig())
	tmpl := func(mt byte, extra ...[]byte) []byte {
		m := &rawMsg{op: 1, htype: 1, chaddr: []byte{2, 0x50, 0, 0, 0, 0}, giaddr: mustAddr(perfRelay)}
		m.opt(optMessageType, mt)
		m.opt(optClientID, 1, 2, 0x50, 0, 0, 0, 0)
		m.opt(optParamRequest, 1, 3, 6)
		for _, e := range extra {
			m.opt(e[0], e[1:]...)
		}
		return m.bytes(true)
	}
	disc := tmpl(1)
	req := tmpl(3, []byte{optServerID, 10, 0, 0, 2}, []byte{optRequestedIP, 0xee, 0xee, 0xee, 0xee})
	at := bytes.Index(req, []byte{0xee, 0xee, 0xee, 0xee})
	patch := func(p []byte, i int) {
		binary.BigEndian.PutUint32(p[30:34], uint32(i))
		binary.BigEndian.PutUint32(p[fixedLen+4+3+2+3:], uint32(i)) // in option 61
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		hs.now = hs.now.Add(time.Microsecond)
		patch(disc, i)
		o := hs.h.handleBytes(hs.now, disc, netip.AddrPort{})
		if len(o.wire) == 0 {
			b.Fatal(o.why)
		}
		patch(req, i)
		copy(req[at:at+4], o.wire[16:20])
		o = hs.h.handleBytes(hs.now, req, netip.AddrPort{})
		if len(o.wire) == 0 || len(o.commit) != 1 {
			b.Fatal(o.why)
		}
	}
}
