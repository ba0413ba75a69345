package dns

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatewayd/firewall"
	"gatewayd/lab"
)

// The peers' lab: one switch; dnsperf's client; the fake upstreams (the
// bench responder, testdata/responder.c: one answering every name with a
// TTL of a day, for the caches, one answering fwd.example. with a TTL of 0,
// so every query there is forwarded); and one namespace per server under
// test, each under gatewayd's ruleset for a DNS alias.
const (
	benchClient    = "192.168.1.50"
	benchUpstream  = "192.168.1.254"
	benchUncached  = "192.168.1.253"
	benchFwdDomain = "fwd.example."
	benchHosts     = 100    // local names
	benchCached    = 1000   // names for the cache-hit runs
	benchRSSNames  = 100000 // names cached before reading RSS
	benchSeconds   = 3      // each fixed-rate dnsperf run
	benchRounds    = 5      // the peers take turns this many times per run
)

// peer is one server under test.
type peer struct {
	name  string
	addr  string
	ns    *lab.Namespace
	cmd   *exec.Cmd
	cores string // taskset's CPU list
}

// BenchmarkPeers compares gatewayd's DNS server with dnsmasq, unbound and
// a bare echo responder (the kernel's floor) in one run, inside lab
// namespaces, every server under gatewayd's ruleset. First the server CPU
// per query (user + system of the server process, from /proc/PID/stat)
// over fixed-rate dnsperf runs, each server pinned to CPU 0 and dnsperf to
// CPU 1: local names, cache hits, forwarded answers and local names over
// TCP. Then the resident memory with 100,000 more cached names. Then every
// server on both cores (unbound with two threads, the echo responder with
// two) and the highest rate each answers without a loss. Run it with
//
//	go test -run '^$' -bench BenchmarkPeers -benchtime 1x ./roles/dns/
//
// With GATEWAYD_DNS_BENCH_TRACE=DIR it also writes, per server, strace -c
// and perf reports of local names at each rate and of forwarded names into
// DIR (see trace). GATEWAYD_DNS_BENCH_ONLY=WORD runs only the fixed-rate
// runs whose name holds WORD ("forwarded", "TCP", ...), for iterating on
// one path.
func BenchmarkPeers(b *testing.B) {
	bl := newBenchLab(b)
	only := os.Getenv(benchOnlyEnv)
	rows := bl.fixedRate(b, only)
	var rss map[string]string
	var ceilings []ceiling
	if only == "" {
		rss = bl.resident(b)
		if dir := os.Getenv(benchTraceEnv); dir != "" {
			bl.trace(b, dir)
		}
		ceilings = bl.ceilings(b)
	}

	var sb strings.Builder
	printFixedRate(&sb, rows)
	if only == "" {
		fmt.Fprintf(&sb, "\nresident memory before → after caching %d more names:\n", benchRSSNames)
		for _, p := range bl.peers[:3] {
			fmt.Fprintf(&sb, "  %-9s %s\n", p.name, rss[p.name])
		}
		printCeilings(&sb, ceilings)
	}
	// Printed, not logged: the testing package truncates long benchmark logs.
	fmt.Println(sb.String())
	for _, r := range rows {
		if r.peer == "gatewayd" {
			b.ReportMetric(float64(r.cpu())/1e3, fmt.Sprintf("µs/q_%s_%dk", metricName(r.run), r.rate/1000))
		}
	}
}

func metricName(run string) string {
	return strings.NewReplacer(",", "", " ", "_").Replace(run)
}

// benchLab is the peers' lab, serving, with warm caches.
type benchLab struct {
	lab    *lab.Lab
	dir    string
	client *lab.Namespace
	peers  []*peer // gatewayd, dnsmasq, unbound, echo
	files  map[string]string
	echo   string // the compiled responder
}

func newBenchLab(b testing.TB) *benchLab {
	lab.RequireTools(b, "dnsperf", "dnsmasq", "unbound", "taskset", "dig", "nft", "cc")
	bl := &benchLab{lab: lab.New(b), dir: b.TempDir()}
	bl.echo = buildResponder(b, bl.dir)
	bl.files = benchFiles(b, bl.dir)
	sw, err := bl.lab.Switch("lan")
	must(b, err)
	plug := func(name string, addrs ...string) *lab.Namespace {
		ns, err := bl.lab.Namespace(name)
		must(b, err)
		_, err = bl.lab.Plug(sw, ns, "eth1")
		must(b, err)
		for _, a := range addrs {
			must(b, ns.Addr("eth1", a+"/24"))
		}
		return ns
	}
	bl.client = plug("client", benchClient)
	up := plug("up", benchUpstream, benchUncached)
	for _, u := range []struct{ addr, ttl string }{{benchUpstream, "86400"}, {benchUncached, "0"}} {
		_, err := up.Start(context.Background(), "taskset", "-c", "1", bl.echo, u.addr, "53", "1", u.ttl)
		must(b, err)
	}
	bl.peers = []*peer{
		{name: "gatewayd", addr: "192.168.1.3"},
		{name: "dnsmasq", addr: "192.168.1.4"},
		{name: "unbound", addr: "192.168.1.5"},
		{name: "echo", addr: "192.168.1.6"},
	}
	for _, p := range bl.peers {
		p.ns = plug(p.name, p.addr)
		applyRuleset(b, p, bl.dir)
		bl.start(b, p, "0")
	}
	return bl
}

// start starts p pinned to cores, waits until it answers, and fills its
// cache with the cache-hit names.
func (bl *benchLab) start(b testing.TB, p *peer, cores string) {
	p.cores = cores
	p.cmd = startPeer(b, p, bl.dir)
	waitServing(b, bl.client, p.addr)
	if p.name != "echo" {
		runDnsperf(b, bl.client, p.addr, bl.files["cached"], "1", "-n", "1")
	}
}

// restart stops p and starts it again pinned to cores.
func (bl *benchLab) restart(b testing.TB, p *peer, cores string) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	bl.start(b, p, cores)
}

// applyRuleset loads into p's namespace the ruleset gatewayd applies for a
// DNS alias at p's address serving the lab's subnet.
func applyRuleset(b testing.TB, p *peer, dir string) {
	addr := netip.MustParseAddr(p.addr)
	lan := netip.MustParsePrefix("192.168.1.0/24")
	r := firewall.Build(firewall.Policy{
		Interface: "eth1",
		Aliases:   []firewall.AliasInfo{{Name: "dns", Addr: addr}},
		Zones: []firewall.ZoneInfo{{Name: "lan", Subnets: []netip.Prefix{lan}, Access: []firewall.Access{
			{Service: "dns", Addr: addr, Port: firewall.PortRange{Proto: "udp", From: 53, To: 53}},
			{Service: "dns", Addr: addr, Port: firewall.PortRange{Proto: "tcp", From: 53, To: 53}},
		}}},
	})
	path := filepath.Join(dir, p.name+".nft")
	must(b, os.WriteFile(path, []byte(r.Render()), 0o644))
	p.ns.MustRun(b, "nft", "-f", path)
}

// buildResponder compiles testdata/responder.c with the system compiler.
func buildResponder(b testing.TB, dir string) string {
	out := filepath.Join(dir, "responder")
	cmd := exec.Command("cc", "-O2", "-Wall", "-pthread", "-o", out, "testdata/responder.c")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("compiling the bench responder: %v\n%s", err, msg)
	}
	return out
}

// startPeer starts one server pinned to p.cores in its namespace.
func startPeer(b testing.TB, p *peer, dir string) *exec.Cmd {
	var argv []string
	switch p.name {
	case "gatewayd":
		path := filepath.Join(dir, "dns.json")
		js, err := json.Marshal(benchConfig(p.addr))
		must(b, err)
		must(b, os.WriteFile(path, js, 0o644))
		cmd := p.ns.Command(context.Background(), "taskset", "-c", p.cores, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), benchServeEnv+"="+path)
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
			"--server=" + benchUpstream, "--server=/" + strings.TrimSuffix(benchFwdDomain, ".") + "/" + benchUncached,
			"--addn-hosts=" + hosts, "--cache-size=150000", "--dns-forward-max=1000"}
	case "unbound":
		conf := filepath.Join(dir, "unbound.conf")
		must(b, os.WriteFile(conf, []byte(unboundConfig(p.addr, strings.Count(p.cores, ",")+1)), 0o644))
		argv = []string{"unbound", "-d", "-c", conf}
	case "echo":
		argv = []string{filepath.Join(dir, "responder"), p.addr, "53", fmt.Sprint(strings.Count(p.cores, ",") + 1), "-1"}
	}
	cmd, err := p.ns.Start(context.Background(), append([]string{"taskset", "-c", p.cores}, argv...)...)
	must(b, err)
	return cmd
}

func hostAddr(i int) string { return fmt.Sprintf("192.168.%d.%d", 10+i/200, 10+i%200) }

// benchConfig is gatewayd's Config in the peers' lab: benchHosts local
// names, a cache large enough for the RSS run, the upstream, and
// fwd.example. forwarded to the upstream whose answers are not cached.
func benchConfig(addr string) *Config {
	listen := netip.MustParseAddr(addr)
	c := &Config{
		Listen: listen, Domain: "home.arpa.", TTL: 60, NSName: "dns.home.arpa.",
		Served:    []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")},
		Allowed:   []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.PrefixFrom(listen, 32)},
		Upstreams: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(benchUpstream), 53)},
		Forward: []Forward{{Domain: benchFwdDomain, Servers: []netip.AddrPort{
			netip.AddrPortFrom(netip.MustParseAddr(benchUncached), 53)}}},
		Cache:  Cache{Size: 200000, MaxTTL: 24 * time.Hour, NegTTL: time.Hour},
		Rebind: true, Timeout: 4 * time.Second, MaxFlight: 1024,
	}
	for i := range benchHosts {
		c.Names = append(c.Names, Name{fmt.Sprintf("bench%d.home.arpa.", i), netip.MustParseAddr(hostAddr(i))})
	}
	c.Names = append(c.Names, Name{"dns.home.arpa.", listen})
	return c
}

func unboundConfig(addr string, threads int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `server:
	interface: %s
	access-control: 192.168.1.0/24 allow
	num-threads: %d
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
`, addr, threads)
	for i := range benchHosts {
		fmt.Fprintf(&sb, "\tlocal-data: \"bench%d.home.arpa. 60 A %s\"\n", i, hostAddr(i))
	}
	fmt.Fprintf(&sb, "remote-control:\n\tcontrol-enable: no\n")
	fmt.Fprintf(&sb, "forward-zone:\n\tname: \"%s\"\n\tforward-addr: %s\n", benchFwdDomain, benchUncached)
	fmt.Fprintf(&sb, "forward-zone:\n\tname: \".\"\n\tforward-addr: %s\n", benchUpstream)
	return sb.String()
}

// benchFiles writes dnsperf's data files.
func benchFiles(b testing.TB, dir string) map[string]string {
	return map[string]string{
		"local":  writeNames(b, dir, "local.txt", benchHosts, func(i int) string { return fmt.Sprintf("bench%d.home.arpa A", i) }),
		"cached": writeNames(b, dir, "cached.txt", benchCached, func(i int) string { return fmt.Sprintf("c%d.example.com A", i) }),
		"rss":    writeNames(b, dir, "rss.txt", benchRSSNames, func(i int) string { return fmt.Sprintf("r%d.example.net A", i) }),
	}
}

// forwardFile writes names under fwd.example. that no earlier run asked:
// enough for one run at rate, every query a miss.
func (bl *benchLab) forwardFile(b testing.TB, tag string, rate int) string {
	n := rate * (benchSeconds + 1)
	return writeNames(b, bl.dir, "fwd-"+tag+".txt", n, func(i int) string {
		return fmt.Sprintf("%s-%d.%s A", tag, i, benchFwdDomain)
	})
}

func writeNames(b testing.TB, dir, name string, n int, line func(i int) string) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(line(i))
		sb.WriteByte('\n')
	}
	path := filepath.Join(dir, name)
	must(b, os.WriteFile(path, []byte(sb.String()), 0o644))
	return path
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
