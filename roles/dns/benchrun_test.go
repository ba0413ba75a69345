package dns

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// benchRates are the fixed query rates of the CPU runs; forwarded
// answers are measured at benchForwardRates (at 150,000 every server
// would only show its ceiling).
var (
	benchRates        = []int{30000, 150000}
	benchForwardRates = []int{10000, 30000}
)

// benchTraceEnv names a directory for strace and perf reports, and
// benchOnlyEnv a word that picks the fixed-rate runs (see BenchmarkPeers).
const (
	benchTraceEnv = "GATEWAYD_DNS_BENCH_TRACE"
	benchOnlyEnv  = "GATEWAYD_DNS_BENCH_ONLY"
)

// cpuRow is one server's figures for one run at one rate: its median round
// by CPU per query, with the queries lost in every round.
type cpuRow struct {
	rate      int
	run, peer string
	r         dnsperfResult
	user, sys time.Duration // the server's, per completed query
	failed    bool          // dnsperf died (every round, for a median row)
	rounds    int           // for a median row: the rounds in which dnsperf died
}

func (r cpuRow) cpu() time.Duration { return r.user + r.sys }

// benchRun is one kind of query stream.
type benchRun struct {
	name  string
	file  func(round int) string
	peers []*peer
	args  []string
}

// fixedRate measures every server's CPU per query at each of benchRates,
// in the runs whose name holds only (all when it is empty).
func (bl *benchLab) fixedRate(b testing.TB, only string) []cpuRow {
	var rows []cpuRow
	servers := bl.peers[:3] // the echo responder answers the local run only
	file := func(name string) func(int) string { return func(int) string { return bl.files[name] } }
	for _, rate := range benchRates {
		runs := []benchRun{
			{name: "local names", file: file("local"), peers: bl.peers},
			{name: "cache hits", file: file("cached"), peers: servers},
		}
		if rate == benchRates[0] {
			// Ten connections: dnsmasq serves each connection in a child
			// process of its own, one query at a time.
			runs = append(runs, benchRun{name: "local names, TCP", file: file("local"), peers: servers, args: []string{"-m", "tcp", "-c", "10"}})
		}
		for _, run := range runs {
			if strings.Contains(run.name, only) {
				rows = append(rows, bl.rounds(b, rate, run)...)
			}
		}
	}
	for _, rate := range benchForwardRates {
		if !strings.Contains("forwarded", only) {
			break
		}
		rows = append(rows, bl.rounds(b, rate, benchRun{name: "forwarded", peers: servers, file: func(round int) string {
			return bl.forwardFile(b, fmt.Sprintf("r%d-%dk", round, rate/1000), rate)
		}})...)
	}
	return rows
}

// rounds runs dnsperf at rate against every peer of run, benchRounds
// times in turn, so that a burst of load from elsewhere on the shared
// machine falls on them all alike.
func (bl *benchLab) rounds(b testing.TB, rate int, run benchRun) []cpuRow {
	all := map[string][]cpuRow{}
	for round := range benchRounds {
		file := run.file(round)
		for _, p := range run.peers {
			row := bl.measure(b, p, file, rate, run.args...)
			row.run = run.name
			all[p.name] = append(all[p.name], row)
		}
	}
	var out []cpuRow
	for _, p := range run.peers {
		var rs []cpuRow
		failed := 0
		for _, r := range all[p.name] {
			if r.failed {
				failed++
			} else {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			out = append(out, cpuRow{rate: rate, run: run.name, peer: p.name, failed: true, rounds: failed})
			continue
		}
		slices.SortFunc(rs, func(a, b cpuRow) int { return cmp.Compare(a.cpu(), b.cpu()) })
		med := rs[len(rs)/2]
		med.r.lost = 0
		for _, r := range rs {
			med.r.lost += r.r.lost
		}
		med.rounds = failed
		out = append(out, med)
	}
	return out
}

// measure runs dnsperf at rate against p and reads p's CPU time around it.
func (bl *benchLab) measure(b testing.TB, p *peer, file string, rate int, args ...string) cpuRow {
	pid := p.cmd.Process.Pid
	u0, s0 := processCPU(pid)
	r, err := tryDnsperf(bl.client, p.addr, file, "1", append([]string{"-l", strconv.Itoa(benchSeconds), "-Q", strconv.Itoa(rate)}, args...)...)
	u1, s1 := processCPU(pid)
	row := cpuRow{rate: rate, peer: p.name, r: r}
	if err != nil {
		b.Logf("%s at %d qps: %v", p.name, rate, err)
		row.failed = true
		return row
	}
	if n := time.Duration(r.completed); n > 0 {
		row.user, row.sys = (u1-u0)/n, (s1-s0)/n
	}
	return row
}

// resident reads each server's VmRSS before and after it caches
// benchRSSNames more names.
func (bl *benchLab) resident(b testing.TB) map[string]string {
	rss := map[string]string{}
	for _, p := range bl.peers[:3] {
		before := residentKB(p.cmd.Process.Pid)
		runDnsperf(b, bl.client, p.addr, bl.files["rss"], "1", "-n", "1", "-Q", "20000")
		rss[p.name] = before + " → " + residentKB(p.cmd.Process.Pid)
	}
	return rss
}

// ceiling is the highest rate of benchLadder a server answered without a
// loss on both cores, and what stopped it at the next step.
type ceiling struct {
	peer    string
	rate    int
	r       dnsperfResult
	cpu     time.Duration // the server's over the step
	stopped string
}

// benchLadder are the rates the multi-core runs climb, 3 s each.
var benchLadder = []int{75000, 100000, 125000, 150000, 175000, 200000, 225000, 250000, 275000, 300000}

// ceilings restarts every server on both cores (unbound with two threads,
// the echo responder with two sockets) and climbs benchLadder with local
// names, the servers taking turns at each step, each until a step loses a
// query or dnsperf cannot send the rate (it holds back with 100 queries
// outstanding: the server, or dnsperf itself, is at its limit). dnsperf
// runs unpinned, sharing the cores, with two threads and 16 sockets, so
// SO_REUSEPORT spreads its queries. (With more queries outstanding its
// first bursts overflow the servers' socket buffers: every server, the
// echo responder too, loses a thousand queries at any rate.)
func (bl *benchLab) ceilings(b testing.TB) []ceiling {
	for _, p := range bl.peers {
		bl.restart(b, p, "0,1")
	}
	out := make([]ceiling, len(bl.peers))
	climbing := map[string]bool{}
	for i, p := range bl.peers {
		out[i].peer = p.name
		climbing[p.name] = true
	}
	for _, rate := range benchLadder {
		for i, p := range bl.peers {
			if !climbing[p.name] {
				continue
			}
			var why string
			for try := 0; try < 2; try++ { // one retry: a burst elsewhere may cost a query
				u0, s0 := processCPU(p.cmd.Process.Pid)
				r := runDnsperf(b, bl.client, p.addr, bl.files["local"], "",
					"-l", "3", "-Q", strconv.Itoa(rate), "-c", "16", "-T", "2")
				u1, s1 := processCPU(p.cmd.Process.Pid)
				why = ""
				switch sent := float64(r.sent) / 3; {
				case r.lost > 0:
					why = fmt.Sprintf("lost %d at %d qps", r.lost, rate)
				case sent < 0.97*float64(rate):
					why = fmt.Sprintf("dnsperf sent only %.0f qps at %d (its CPU %.2f cores)", sent, rate, r.clientCPU.Seconds()/3)
				default:
					out[i].rate, out[i].r, out[i].cpu = rate, r, u1-u0+s1-s0
				}
				if why == "" {
					break
				}
			}
			if why != "" {
				out[i].stopped = why
				climbing[p.name] = false
			}
		}
	}
	return out
}

// trace writes, per server, for local names at each of benchRates and
// for forwarded names at the lower forwarding rate: a perf profile, perf's
// count of system calls and context switches, and strace -c (which slows
// the server down: its counts are what to read, not its times).
func (bl *benchLab) trace(b testing.TB, dir string) {
	must(b, os.MkdirAll(dir, 0o755))
	type traced struct {
		run  string
		rate int
	}
	runs := []traced{{"local", benchRates[0]}, {"local", benchRates[1]}, {"forwarded", benchForwardRates[0]}}
	for _, run := range runs {
		for _, p := range bl.peers {
			if run.run == "forwarded" && p.name == "echo" {
				continue
			}
			pid := strconv.Itoa(p.cmd.Process.Pid)
			base := filepath.Join(dir, fmt.Sprintf("%s-%s-%dk", p.name, run.run, run.rate/1000))
			for i, argv := range [][]string{
				{"perf", "stat", "-e", "raw_syscalls:sys_enter,context-switches,task-clock", "-p", pid, "-o", base + ".perfstat.txt"},
				{"perf", "record", "-e", "cpu-clock", "-g", "-p", pid, "-o", base + ".perf.data"},
				{"strace", "-c", "-f", "-p", pid, "-o", base + ".strace.txt"},
			} {
				file := bl.files["local"]
				if run.run == "forwarded" {
					file = bl.forwardFile(b, fmt.Sprintf("t%d-%s", i, p.name), run.rate)
				}
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
				must(b, cmd.Start())
				time.Sleep(500 * time.Millisecond) // attached
				r := runDnsperf(b, bl.client, p.addr, file, "1", "-l", strconv.Itoa(benchSeconds), "-Q", strconv.Itoa(run.rate))
				cmd.Process.Signal(syscall.SIGINT)
				cmd.Wait()
				note := fmt.Sprintf("%s %s %s at %d qps: completed %d, lost %d\n", argv[0], p.name, run.run, run.rate, r.completed, r.lost)
				appendFile(b, filepath.Join(dir, "runs.txt"), note)
			}
			out, err := exec.Command("perf", "report", "-i", base+".perf.data", "--stdio", "--no-children",
				"--sort", "dso,sym", "-g", "none", "--percent-limit", "0.5").CombinedOutput()
			if err != nil {
				b.Logf("perf report for %s: %v", p.name, err)
			}
			must(b, os.WriteFile(base+".perf.txt", out, 0o644))
		}
	}
}

func appendFile(b testing.TB, path, s string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	must(b, err)
	_, err = f.WriteString(s)
	must(b, err)
	must(b, f.Close())
}

// printFixedRate prints the CPU table: each gatewayd row with its ratio to
// the better of dnsmasq and unbound, and every row with its ratio to the
// echo responder at the same rate.
func printFixedRate(w io.Writer, rows []cpuRow) {
	fmt.Fprintf(w, "\nserver CPU per query at a fixed rate: server on CPU 0, dnsperf on CPU 1, median of %d rounds of %d s, lost summed\n", benchRounds, benchSeconds)
	fmt.Fprintf(w, "* below the asked rate: dnsperf held back with 100 queries outstanding (the server or dnsperf at its limit)\n")
	fmt.Fprintf(w, "%-8s %-17s %-9s %9s %16s %7s %11s %10s %8s\n", "rate", "run", "server", "cpu/query", "(user + sys)", "lost", "qps", "vs best", "vs echo")
	echo := map[int]time.Duration{}
	best := map[string]time.Duration{}
	key := func(r cpuRow) string { return fmt.Sprint(r.rate, r.run) }
	for _, r := range rows {
		if r.failed {
			continue
		}
		switch r.peer {
		case "echo":
			echo[r.rate] = r.cpu()
		case "dnsmasq", "unbound":
			if b, ok := best[key(r)]; !ok || r.cpu() < b {
				best[key(r)] = r.cpu()
			}
		}
	}
	us := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e3) }
	ratio := func(a, b time.Duration) string {
		if b <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.2fx", float64(a)/float64(b))
	}
	for _, r := range rows {
		vsBest, vsEcho := "", "—"
		if r.peer == "gatewayd" {
			vsBest = ratio(r.cpu(), best[key(r)])
		}
		if !strings.Contains(r.run, "TCP") {
			vsEcho = ratio(r.cpu(), echo[r.rate])
		}
		if r.failed {
			fmt.Fprintf(w, "%-8d %-17s %-9s dnsperf died in all %d rounds\n", r.rate, r.run, r.peer, r.rounds)
			continue
		}
		behind := "" // dnsperf held back: 100 queries were outstanding
		if r.r.qps < 0.97*float64(r.rate) {
			behind = " *"
		}
		if r.rounds > 0 {
			behind += fmt.Sprintf(" (dnsperf died in %d rounds)", r.rounds)
		}
		fmt.Fprintf(w, "%-8d %-17s %-9s %6s µs %16s %7d %9.0f%-2s %10s %8s\n", r.rate, r.run, r.peer, us(r.cpu()),
			"("+us(r.user)+" + "+us(r.sys)+")", r.r.lost, r.r.qps, behind, vsBest, vsEcho)
	}
}

// printCeilings prints the multi-core table with gatewayd's ratios.
func printCeilings(w io.Writer, cs []ceiling) {
	fmt.Fprintf(w, "\nboth cores (gatewayd one loop per core, unbound num-threads 2, dnsmasq single-threaded, echo two threads),\n")
	fmt.Fprintf(w, "dnsperf unpinned -T 2 -c 16, local names: the highest rate of %v answered in full\n", benchLadder)
	var g float64
	for _, c := range cs {
		if c.peer == "gatewayd" {
			g = c.r.qps
		}
	}
	fmt.Fprintf(w, "%-9s %9s %9s %11s %11s %9s  %s\n", "server", "rate", "qps", "server cpu", "dnsperf cpu", "gatewayd/", "next step")
	for _, c := range cs {
		ratio := "—"
		if c.r.qps > 0 {
			ratio = fmt.Sprintf("%.2fx", g/c.r.qps)
		}
		fmt.Fprintf(w, "%-9s %9d %9.0f %11.2f %11.2f %9s  %s\n", c.peer, c.rate, c.r.qps, c.cpu.Seconds()/3,
			c.r.clientCPU.Seconds()/3, ratio, c.stopped)
	}
	fmt.Fprintf(w, "(cpu in cores over the 3 s step; the machine has 2)\n")
}

// runDnsperf runs dnsperf in client, pinned to cores unless that is empty.
func runDnsperf(b testing.TB, client *lab.Namespace, server, file, cores string, args ...string) dnsperfResult {
	r, err := tryDnsperf(client, server, file, cores, args...)
	must(b, err)
	return r
}

// tryDnsperf is runDnsperf that returns dnsperf's failure. dnsperf 2.10
// can die over TCP when a server closes connections under it ("failed to
// receive packet: Bad file descriptor", against dnsmasq).
func tryDnsperf(client *lab.Namespace, server, file, cores string, args ...string) (dnsperfResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	argv := append([]string{"dnsperf", "-s", server, "-d", file, "-t", "2"}, args...)
	if cores != "" {
		argv = append([]string{"taskset", "-c", cores}, argv...)
	}
	cmd := client.Command(ctx, argv...)
	out, err := lab.CombinedOutput(cmd)
	if err != nil {
		var last string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.Contains(l, "[Timeout]") {
				last = l
			}
		}
		return dnsperfResult{}, fmt.Errorf("dnsperf against %s: %w: %s", server, err, last)
	}
	r, err := parseDnsperf(string(out))
	if err != nil {
		return r, err
	}
	r.clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}

// processCPU reads a process's user and system time from /proc (in clock
// ticks of 10 ms, the USER_HZ Linux reports).
func processCPU(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0
	}
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(u) * 10 * time.Millisecond, time.Duration(st) * 10 * time.Millisecond
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
