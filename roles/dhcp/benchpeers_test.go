package dhcp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// The benchmark's servers and load generator: how each peer is started on
// fresh state, pinned to its core, and how perfdhcp's report and the
// server's CPU time and memory are read.

// perfResult is one perfdhcp run against one server.
type perfResult struct {
	rate      int     // asked exchanges/s
	period    int     // seconds
	acks      int     // ACKs perfdhcp received
	completed float64 // ACKs received per second of the run
	dropDO    float64 // DISCOVER-OFFER drops, percent
	dropRA    float64 // REQUEST-ACK drops, percent
	// user and sys are the server process's CPU time over the run;
	// switches its context switches (all threads, voluntary or not).
	user, sys time.Duration
	switches  int
	// rcvbufErr counts replies the kernel dropped because perfdhcp's socket
	// buffer was full: drops the load generator, not the server, caused.
	rcvbufErr int
}

func (r perfResult) ok() bool { return r.dropDO <= 1 && r.dropRA <= 1 }

// perExchange is the server's CPU time per completed exchange.
func (r perfResult) perExchange() (user, sys time.Duration) {
	if r.acks == 0 {
		return 0, 0
	}
	return r.user / time.Duration(r.acks), r.sys / time.Duration(r.acks)
}

var (
	reDrops    = regexp.MustCompile(`drops ratio: ([0-9.]+) %`)
	reReceived = regexp.MustCompile(`(?s)Statistics for: REQUEST-ACK\*\*\*\s*sent packets: \d+\s*received packets: (\d+)`)
)

// parsePerf reads perfdhcp's final report.
func parsePerf(out string, rate, period int) (perfResult, error) {
	r := perfResult{rate: rate, period: period}
	drops := reDrops.FindAllStringSubmatch(out, -1)
	recv := reReceived.FindStringSubmatch(out)
	if len(drops) < 2 || recv == nil {
		return r, fmt.Errorf("cannot read perfdhcp's report:\n%s", out)
	}
	r.dropDO, _ = strconv.ParseFloat(drops[0][1], 64)
	r.dropRA, _ = strconv.ParseFloat(drops[1][1], 64)
	r.acks, _ = strconv.Atoi(recv[1])
	r.completed = float64(r.acks) / float64(period)
	return r, nil
}

// Cores: the server runs on serverCPU, perfdhcp on loadCPU (taskset), as
// in the DNS benchmark, so each has a core and the servers compare on one
// core each (Kea 2.2 is single-threaded; gatewayd's GOMAXPROCS is 1).
const (
	serverCPU = "0"
	loadCPU   = "1"
)

// pinned prefixes argv with taskset to cpu when the machine has two cores.
func pinned(cpu string, argv ...string) []string {
	if runtime.NumCPU() < 2 {
		return argv
	}
	return append([]string{"taskset", "-c", cpu}, argv...)
}

// benchServer starts one DHCP server in n.gw on fresh state in dir.
type benchServer struct {
	name  string
	start func(tb testing.TB, n *perfNet, dir, tag string) (*exec.Cmd, error)
}

var benchServers = []benchServer{
	{"gatewayd", startGatewayd},
	{"kea-dhcp4", startKea},
	{"dnsmasq", startDnsmasq},
}

// profileEnv names a file the child server writes its CPU profile to
// (runtime/pprof) when it stops.
const profileEnv = "GATEWAYD_DHCP_CPUPROFILE"

// startGatewayd runs the test binary as the server (child_test.go); with
// BENCH_PROFILE=<dir> it writes a CPU profile per run there, named by tag.
func startGatewayd(tb testing.TB, n *perfNet, dir, tag string) (*exec.Cmd, error) {
	var env []string
	if d := os.Getenv("BENCH_PROFILE"); d != "" {
		env = append(env, profileEnv+"="+filepath.Join(d, "gatewayd-"+tag+".pprof"))
	}
	return startChildPinned(tb, n.gw, benchConfig(), dir, env), nil
}

// keaConfig: memfile with persistence (Kea's default lease store), UDP
// sockets (perfdhcp is a relay), the same pool and options as benchConfig.
const keaConfig = `{"Dhcp4": {
  "interfaces-config": {"interfaces": ["eth1/{{alias}}"], "dhcp-socket-type": "udp"},
  "lease-database": {"type": "memfile", "persist": true, "name": "{{dir}}/kea-leases4.csv", "lfc-interval": 0},
  "valid-lifetime": 43200,
  "subnet4": [{"id": 1, "subnet": "{{subnet}}",
    "pools": [{"pool": "{{first}} - {{last}}"}],
    "option-data": [{"name": "routers", "data": "{{router}}"}, {"name": "domain-name-servers", "data": "{{router}}"}]}],
  "loggers": [{"name": "kea-dhcp4", "severity": "WARN", "output_options": [{"output": "stderr"}]}]
}}`

func startKea(tb testing.TB, n *perfNet, dir, _ string) (*exec.Cmd, error) {
	cfg := filepath.Join(dir, "kea-dhcp4.conf")
	conf := strings.NewReplacer("{{dir}}", dir, "{{alias}}", perfAlias, "{{subnet}}", perfSubnet,
		"{{first}}", perfFirst, "{{last}}", perfLast, "{{router}}", perfRouter).Replace(keaConfig)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := n.gw.Command(context.Background(), pinned(serverCPU, "kea-dhcp4", "-c", cfg)...)
	cmd.Env = append(os.Environ(), "KEA_LOCKFILE_DIR="+dir, "KEA_PIDFILE_DIR="+dir)
	return startAndWait(n, cmd, "udp "+perfAlias+":67", dir)
}

func startDnsmasq(tb testing.TB, n *perfNet, dir, _ string) (*exec.Cmd, error) {
	cmd := n.gw.Command(context.Background(), pinned(serverCPU, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
		"--interface=eth1", "--dhcp-range="+perfFirst+","+perfLast+",255.240.0.0,12h", "--dhcp-option=3,"+perfRouter,
		"--dhcp-option=6,"+perfRouter, "--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"), "--dhcp-authoritative",
		"--no-ping", "--dhcp-lease-max=1100000", "--user=root", "--pid-file="+filepath.Join(dir, "dnsmasq.pid"),
		"--quiet-dhcp", "--log-facility="+filepath.Join(dir, "dnsmasq.log"))...)
	return startAndWait(n, cmd, "udp 0.0.0.0:67", dir)
}

// startAndWait starts a peer server, its output going to dir/server.log,
// and waits until it listens on port 67.
func startAndWait(n *perfNet, cmd *exec.Cmd, listen, dir string) (*exec.Cmd, error) {
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := n.gw.StartCommand(cmd); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = lab.Poll(ctx, func() error {
		out, err := n.gw.Run(ctx, "ss", "-uanpH", "sport", "= :67")
		if err != nil || !strings.Contains(out, strings.Fields(listen)[1]) {
			return fmt.Errorf("%s does not listen on %s yet: %s %v", cmd.Args, listen, out, err)
		}
		return nil
	})
	return cmd, err
}

// stopServer ends a server gracefully (SIGTERM) and reaps it.
func stopServer(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// runPerf runs perfdhcp, a relay, on its core at rate for period seconds
// with the given number of distinct clients (-R: perfdhcp draws each
// exchange's client at random among them), its socket's receive buffer
// enlarged (n.rcvbuf). It runs single-threaded (-g single): on a machine of
// two cores it would receive in a second thread, which on its one core
// only costs it switches (it then tops out near 19,000 exchanges/s; single,
// above 30,000).
func runPerf(n *perfNet, rate, period, clients int) (perfResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(period+30)*time.Second)
	defer cancel()
	cmd := n.perf.Command(ctx, pinned(loadCPU, "perfdhcp", "-4", "-g", "single", "-r", strconv.Itoa(rate), "-R", strconv.Itoa(clients),
		"-p", strconv.Itoa(period), "-W", "1000000", "-l", perfRelay, perfAlias)...)
	if n.rcvbuf != "" {
		cmd.Env = append(os.Environ(), "LD_PRELOAD="+n.rcvbuf)
	}
	b, err := lab.CombinedOutput(cmd)
	out := string(b)
	if err != nil && !strings.Contains(out, "drops ratio") {
		return perfResult{}, fmt.Errorf("perfdhcp: %w\n%s", err, out)
	}
	return parsePerf(out, rate, period)
}

// rcvbufShim is a library perfdhcp is run with (LD_PRELOAD): every UDP
// socket it opens gets a receive buffer of 4 MiB. perfdhcp has no option
// for it, its default (212,992 bytes, a few hundred replies) overflows
// when a server answers a burst faster than perfdhcp, busy sending on its
// one core, reads them, and net.core.rmem_default cannot be set in a
// network namespace: those drops would be the load generator's, not the
// server's. Kea's replies come one by one and never filled it; gatewayd's
// come in batches (a read's OFFERs, a sync's ACKs).
const rcvbufShim = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>
int socket(int domain, int type, int protocol) {
	static int (*real)(int, int, int);
	if (!real) real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	int fd = real(domain, type, protocol);
	if (fd >= 0 && (type & 0xf) == SOCK_DGRAM) {
		int size = 4 << 20;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	}
	return fd;
}
`

// buildRcvbufShim compiles rcvbufShim with the system's C compiler into
// dir; "" (perfdhcp as it is) when there is none.
func buildRcvbufShim(tb testing.TB, dir string) string {
	src, so := filepath.Join(dir, "rcvbuf.c"), filepath.Join(dir, "rcvbuf.so")
	if err := os.WriteFile(src, []byte(rcvbufShim), 0o644); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("cc", "-shared", "-fPIC", "-O2", "-o", so, src, "-ldl").CombinedOutput(); err != nil {
		tb.Logf("perfdhcp keeps its socket's default receive buffer: cannot build the shim: %v\n%s", err, out)
		return ""
	}
	return so
}

// benchOne runs perfdhcp against a fresh instance of srv (empty lease
// database) and measures the server's CPU time over the run.
func benchOne(b *testing.B, n *perfNet, srv benchServer, rate, period, clients int, tag string) perfResult {
	dir := b.TempDir()
	cmd, err := srv.start(b, n, dir, tag)
	if err != nil {
		b.Fatalf("starting %s: %v", srv.name, err)
	}
	if n.share != nil {
		if err := n.share.add(cmd.Process.Pid); err != nil {
			stopServer(cmd)
			b.Fatalf("holding %s to %d%% of a core: %v", srv.name, n.share.percent, err)
		}
	}
	u0, s0 := cpuTimes(cmd.Process.Pid)
	cs0 := contextSwitches(cmd.Process.Pid)
	rcv0 := udpRcvbufErrors(n.perf)
	res, err := runPerf(n, rate, period, clients)
	u1, s1 := cpuTimes(cmd.Process.Pid)
	res.user, res.sys = u1-u0, s1-s0
	res.switches = contextSwitches(cmd.Process.Pid) - cs0
	res.rcvbufErr = udpRcvbufErrors(n.perf) - rcv0
	stopServer(cmd)
	if err != nil {
		b.Fatalf("perfdhcp against %s: %v", srv.name, err)
	}
	return res
}

// cpuTimes is the user and system CPU time process pid has used so far
// (all its threads).
func cpuTimes(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0
	}
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	const tick = time.Second / 100 // USER_HZ
	return time.Duration(utime) * tick, time.Duration(stime) * tick
}

// contextSwitches sums the voluntary and involuntary context switches of
// every thread of process pid so far.
func contextSwitches(pid int) int {
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	n := 0
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && strings.HasSuffix(f[0], "ctxt_switches:") {
				v, _ := strconv.Atoi(f[1])
				n += v
			}
		}
	}
	return n
}

// memory reads a process's VmRSS and VmHWM in KiB.
func memory(pid int) (rss, hwm int) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			rss, _ = strconv.Atoi(f[1])
		}
		if len(f) >= 2 && f[0] == "VmHWM:" {
			hwm, _ = strconv.Atoi(f[1])
		}
	}
	return rss, hwm
}

// udpRcvbufErrors reads the UDP RcvbufErrors counter of namespace ns.
func udpRcvbufErrors(ns *lab.Namespace) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.Atoi(f[i])
				return v
			}
		}
	}
	return 0
}
