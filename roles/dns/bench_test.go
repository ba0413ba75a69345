package dns

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"gatewayd/lab"
)

// The peers' lab: one switch, dnsperf's client, the fake upstream, and one
// namespace per server under test.
const (
	benchClient   = "192.168.1.50"
	benchUpstream = "192.168.1.254"
	benchHosts    = 100    // local names
	benchCached   = 1000   // names for the cache-hit run
	benchRSSNames = 100000 // names cached before reading RSS
	benchSeconds  = "3"    // each dnsperf run
)

// peer is one server under test.
type peer struct {
	name string
	addr string
	ns   *lab.Namespace
	cmd  *exec.Cmd
}

// BenchmarkPeers compares gatewayd's DNS server with dnsmasq and unbound
// in one run: each server pinned to CPU 0 (taskset), dnsperf to CPU 1,
// all inside lab namespaces, the peers forwarding to a fake upstream in a
// namespace of its own. It reports local names, cache hits and TCP, and
// the resident memory with 100,000 cached names. Run it with
//
//	go test -run '^$' -bench BenchmarkPeers -benchtime 1x ./roles/dns/
func BenchmarkPeers(b *testing.B) {
	bl := newBenchLab(b)
	type row struct {
		peer, run string
		r         dnsperfResult
	}
	var rows []row
	// TCP runs use 10 connections: dnsmasq serves each connection in a
	// child process of its own, one query at a time, and with dnsperf's
	// single pipelined connection it drops most of them.
	for _, run := range []struct {
		name, file string
		args       []string
	}{
		{"local names", bl.files["local"], []string{"-m", "udp"}},
		{"cache hits", bl.files["cached"], []string{"-m", "udp"}},
		{"local names, TCP", bl.files["local"], []string{"-m", "tcp", "-c", "10"}},
	} {
		results := bl.rounds(b, run.file, run.args...)
		for _, p := range bl.peers {
			rows = append(rows, row{p.name, run.name, results[p.name]})
		}
	}
	rss := map[string]string{}
	for _, p := range bl.peers {
		before := residentKB(p.cmd.Process.Pid)
		runDnsperf(b, bl.client, p.addr, bl.files["rss"], "-n", "1", "-Q", "20000")
		rss[p.name] = before + " → " + residentKB(p.cmd.Process.Pid)
	}
	// The table, with each run's ratio to dnsmasq.
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-18s %-9s %10s %6s %12s %10s %10s\n", "run", "server", "qps", "lost", "avg latency", "cpu/query", "vs dnsmasq")
	base := map[string]float64{}
	for _, r := range rows {
		if r.peer == "dnsmasq" {
			base[r.run] = r.r.qps
		}
	}
	for _, r := range rows {
		ratio := r.r.qps / base[r.run]
		fmt.Fprintf(&sb, "%-18s %-9s %10.0f %6d %12s %10s %9.2fx\n", r.run, r.peer, r.r.qps, r.r.lost,
			r.r.avgLatency.Round(time.Microsecond), r.r.cpuPerQuery.Round(100*time.Nanosecond), ratio)
		if r.peer == "gatewayd" {
			b.ReportMetric(r.r.qps, strings.ReplaceAll(strings.ReplaceAll(r.run, ",", ""), " ", "_")+"_qps")
		}
	}
	fmt.Fprintf(&sb, "\nresident memory before → after caching %d more names:\n", benchRSSNames)
	for _, p := range bl.peers {
		fmt.Fprintf(&sb, "  %-9s %s\n", p.name, rss[p.name])
	}
	// Printed, not logged: the testing package truncates long benchmark logs.
	fmt.Println(sb.String())
}

// benchLab is the peers' lab, serving, with warm caches.
type benchLab struct {
	client *lab.Namespace
	peers  []*peer
	files  map[string]string
}

func newBenchLab(b testing.TB) *benchLab {
	lab.RequireTools(b, "dnsperf", "dnsmasq", "unbound", "taskset", "dig")
	dir := b.TempDir()
	l := lab.New(b)
	sw, err := l.Switch("lan")
	must(b, err)
	plug := func(name, addr string) *lab.Namespace {
		ns, err := l.Namespace(name)
		must(b, err)
		_, err = l.Plug(sw, ns, "eth1")
		must(b, err)
		must(b, ns.Addr("eth1", addr+"/24"))
		return ns
	}
	bl := &benchLab{client: plug("client", benchClient)}
	startBenchUpstream(b, plug("up", benchUpstream))
	bl.peers = []*peer{
		{name: "gatewayd", addr: "192.168.1.3"},
		{name: "dnsmasq", addr: "192.168.1.4"},
		{name: "unbound", addr: "192.168.1.5"},
	}
	for _, p := range bl.peers {
		p.ns = plug(p.name, p.addr)
		p.cmd = startPeer(b, p, dir)
	}
	bl.files = benchFiles(b, dir)
	for _, p := range bl.peers {
		waitServing(b, bl.client, p.addr)
		runDnsperf(b, bl.client, p.addr, bl.files["cached"], "-n", "1") // fill the cache
	}
	return bl
}

// benchRounds runs of benchSeconds each, the peers taking turns, so a burst
// of load from elsewhere on the shared machine hits them all alike.
const benchRounds = 3

// rounds runs dnsperf with file against every peer, benchRounds times in
// turn, and keeps each peer's median run by qps; lost counts every round.
func (bl *benchLab) rounds(b testing.TB, file string, args ...string) map[string]dnsperfResult {
	all := map[string][]dnsperfResult{}
	for range benchRounds {
		for _, p := range bl.peers {
			before := processCPU(p.cmd.Process.Pid)
			r := runDnsperf(b, bl.client, p.addr, file, append([]string{"-l", benchSeconds}, args...)...)
			if r.completed > 0 {
				r.cpuPerQuery = (processCPU(p.cmd.Process.Pid) - before) / time.Duration(r.completed)
			}
			all[p.name] = append(all[p.name], r)
		}
	}
	out := map[string]dnsperfResult{}
	for name, rs := range all {
		slices.SortFunc(rs, func(a, b dnsperfResult) int { return cmp.Compare(a.qps, b.qps) })
		med := rs[len(rs)/2]
		med.lost = 0
		for _, r := range rs {
			med.lost += r.lost
		}
		out[name] = med
	}
	return out
}

// startPeer starts one server pinned to CPU 0 in its namespace.
func startPeer(b testing.TB, p *peer, dir string) *exec.Cmd {
	var argv []string
	switch p.name {
	case "gatewayd":
		path := filepath.Join(dir, "dns.json")
		js, err := json.Marshal(benchConfig(p.addr))
		must(b, err)
		must(b, os.WriteFile(path, js, 0o644))
		cmd := p.ns.Command(context.Background(), "taskset", "-c", "0", os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), benchServeEnv+"="+path, "GOMAXPROCS=1")
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		must(b, p.ns.StartCommand(cmd))
		return cmd
	case "dnsmasq":
		hosts := filepath.Join(dir, "hosts")
		var sb strings.Builder
		for i := range benchHosts {
			fmt.Fprintf(&sb, "%s bench%d.home.arpa\n", hostAddr(i), i)
		}
		must(b, os.WriteFile(hosts, []byte(sb.String()), 0o644))
		argv = []string{"dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file=",
			"--bind-interfaces", "--listen-address=" + p.addr, "--except-interface=lo", "--user=root",
			"--server=" + benchUpstream, "--addn-hosts=" + hosts, "--cache-size=150000", "--dns-forward-max=1000"}
	case "unbound":
		conf := filepath.Join(dir, "unbound.conf")
		must(b, os.WriteFile(conf, []byte(unboundConfig(p.addr)), 0o644))
		argv = []string{"unbound", "-d", "-c", conf}
	}
	cmd, err := p.ns.Start(context.Background(), append([]string{"taskset", "-c", "0"}, argv...)...)
	must(b, err)
	return cmd
}

func hostAddr(i int) string { return fmt.Sprintf("192.168.%d.%d", 10+i/200, 10+i%200) }

// benchConfig is gatewayd's Config in the peers' lab: benchHosts local
// names, a cache large enough for the RSS run, one upstream.
func benchConfig(addr string) *Config {
	listen := netip.MustParseAddr(addr)
	c := &Config{
		Listen: listen, Domain: "home.arpa.", TTL: 60, NSName: "dns.home.arpa.",
		Served:    []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")},
		Allowed:   []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.PrefixFrom(listen, 32)},
		Upstreams: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(benchUpstream), 53)},
		Cache:     Cache{Size: 200000, MaxTTL: 24 * time.Hour, NegTTL: time.Hour},
		Rebind:    true, Timeout: 4 * time.Second, MaxFlight: 1024,
	}
	for i := range benchHosts {
		c.Names = append(c.Names, Name{fmt.Sprintf("bench%d.home.arpa.", i), netip.MustParseAddr(hostAddr(i))})
	}
	c.Names = append(c.Names, Name{"dns.home.arpa.", listen})
	return c
}

func unboundConfig(addr string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `server:
	interface: %s
	access-control: 192.168.1.0/24 allow
	num-threads: 1
	do-daemonize: no
	chroot: ""
	username: ""
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 0
	do-ip6: no
	module-config: "iterator"
	msg-cache-size: 128m
	rrset-cache-size: 256m
	local-zone: "home.arpa." static
`, addr)
	for i := range benchHosts {
		fmt.Fprintf(&sb, "\tlocal-data: \"bench%d.home.arpa. 60 A %s\"\n", i, hostAddr(i))
	}
	fmt.Fprintf(&sb, "remote-control:\n\tcontrol-enable: no\nforward-zone:\n\tname: \".\"\n\tforward-addr: %s\n", benchUpstream)
	return sb.String()
}

// benchFiles writes dnsperf's data files.
func benchFiles(b testing.TB, dir string) map[string]string {
	write := func(name string, n int, line func(i int) string) string {
		var sb strings.Builder
		for i := range n {
			sb.WriteString(line(i))
			sb.WriteByte('\n')
		}
		path := filepath.Join(dir, name)
		must(b, os.WriteFile(path, []byte(sb.String()), 0o644))
		return path
	}
	return map[string]string{
		"local":  write("local.txt", benchHosts, func(i int) string { return fmt.Sprintf("bench%d.home.arpa A", i) }),
		"cached": write("cached.txt", benchCached, func(i int) string { return fmt.Sprintf("c%d.example.com A", i) }),
		"rss":    write("rss.txt", benchRSSNames, func(i int) string { return fmt.Sprintf("r%d.example.net A", i) }),
	}
}

// waitServing waits until server answers a local name.
func waitServing(b testing.TB, client *lab.Namespace, server string) {
	lab.Eventually(b, 10*time.Second, func() error {
		r := dig(b, client, server, "+time=1", "bench1.home.arpa", "A")
		if r.status != "NOERROR" {
			return fmt.Errorf("%s not serving yet: %s", server, r.out)
		}
		return nil
	})
}

// runDnsperf runs dnsperf pinned to CPU 1.
func runDnsperf(b testing.TB, client *lab.Namespace, server, file string, args ...string) dnsperfResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	argv := append([]string{"taskset", "-c", "1", "dnsperf", "-s", server, "-d", file, "-t", "2"}, args...)
	out, err := client.Run(ctx, argv...)
	must(b, err)
	r, err := parseDnsperf(out)
	must(b, err)
	return r
}

// processCPU reads a process's user and system time from /proc (in clock
// ticks of 10 ms, the USER_HZ Linux reports).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.Atoi(f[11])
	sys, _ := strconv.Atoi(f[12])
	return time.Duration(user+sys) * 10 * time.Millisecond
}

// residentKB reads a process's VmRSS.
func residentKB(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.Join(strings.Fields(rest), " ")
		}
	}
	return "?"
}

// startBenchUpstream answers every A query with one address and a day's
// TTL, so the peers' caches stay warm for the whole run.
func startBenchUpstream(b testing.TB, ns *lab.Namespace) {
	pc, err := ns.ListenPacket(context.Background(), &net.ListenConfig{}, "udp", benchUpstream+":53")
	must(b, err)
	srv := &dns.Server{PacketConn: pc, UDPSize: 4096, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg).SetReply(q)
		m.RecursionAvailable = true
		if q.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{aRecord(q.Question[0].Name, netipAddr4(93, 184, 216, 34), 86400)}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	b.Cleanup(func() { srv.Shutdown() })
}
