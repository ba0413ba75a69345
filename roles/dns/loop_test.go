package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"gatewayd/lab"
)

// loopLab is the smallest lab for the read loops' forwarding: the server
// in a gateway namespace (through the guard), a client, and one
// misbehaving upstream (badupstream_test.go).
type loopLab struct {
	gw, lan *lab.Namespace
	up      *badUpstream
	guard   *guardNet
	srv     *Server
}

func newLoopLab(t *testing.T, edits ...func(*Config)) *loopLab {
	t.Helper()
	lab.RequireTools(t, "dig")
	l := lab.New(t)
	sw, err := l.Switch("lan")
	must(t, err)
	ns := func(name, addr string) *lab.Namespace {
		n, err := l.Namespace(name)
		must(t, err)
		_, err = l.Plug(sw, n, "eth1")
		must(t, err)
		must(t, n.Addr("eth1", addr+"/24"))
		return n
	}
	ll := &loopLab{gw: ns("gw", dnsAlias), lan: ns("lan", lanAddr)}
	ll.up = startBadUpstream(t, ns("up", flakyUp), flakyUp)
	ll.guard = newGuardNet(t, ll.gw)
	ll.srv = New(Options{Logger: lab.Logger(t), Net: ll.guard})
	t.Cleanup(func() { ll.srv.Close() })
	c := siteConfig(append([]func(*Config){func(c *Config) {
		c.Upstreams = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(flakyUp), 53)}
	}}, edits...)...)
	must(t, ll.srv.Set(context.Background(), c))
	return ll
}

// upstream is the server's upstream object for flakyUp.
func (ll *loopLab) upstream() *upstream {
	ll.srv.mu.Lock()
	defer ll.srv.mu.Unlock()
	return ll.srv.upstreams[netip.AddrPortFrom(netip.MustParseAddr(flakyUp), 53)]
}

// upstreamSockets counts the process's UDP sockets connected to flakyUp:53.
func upstreamSockets(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	want := netip.MustParseAddr(flakyUp).As4()
	n := 0
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_DGRAM {
			continue
		}
		if sa, err := unix.Getpeername(fd); err == nil {
			if sa4, ok := sa.(*unix.SockaddrInet4); ok && sa4.Addr == want && sa4.Port == 53 {
				n++
			}
		}
	}
	return n
}

// TestLoopPortPool: the attempts a read loop sends come from sockets the
// seam dialled, on ports from the whole unprivileged range; no socket
// carries more than portUses attempts, none is used past portLife, and an
// idle loop closes them.
func TestLoopPortPool(t *testing.T) {
	ll := newLoopLab(t)
	const n = 300
	name := func(i int) string { return fmt.Sprintf("g-pool%d.example.com.", i) }
	askMany(t, ll.lan, dnsAlias, n, name)
	ll.up.mu.Lock()
	ports := append([]int(nil), ll.up.ports[netip.MustParseAddr(dnsAlias)]...)
	ll.up.mu.Unlock()
	// Every name was asked; under load some may have been asked again (a
	// retransmission), so there are at least as many queries as names.
	for i := range n {
		if ll.up.seen(name(i)) == 0 {
			t.Fatalf("the upstream was never asked %s", name(i))
		}
	}
	if len(ports) < n {
		t.Fatalf("the upstream saw %d queries, want at least %d", len(ports), n)
	}
	uses := map[int]int{}
	for _, p := range ports {
		if p < 1024 || p > 65535 {
			t.Fatalf("source port %d", p)
		}
		if !ll.guard.dialledFrom(p) {
			t.Fatalf("port %d is no socket's the seam dialled", p)
		}
		uses[p]++
	}
	for p, k := range uses {
		if k > portUses {
			t.Fatalf("port %d carried %d queries, at most %d", p, k, portUses)
		}
	}
	if len(uses) < portPoolSize/2 {
		t.Fatalf("%d queries from %d ports", n, len(uses))
	}
	t.Logf("%d queries from %d ports", n, len(uses))
	if upstreamSockets(t) == 0 {
		t.Fatal("no upstream socket open after the queries")
	}
	// Past portLife a query goes out on a socket dialled for it.
	time.Sleep(portLife + 100*time.Millisecond)
	before := ll.guard.dialed("udp")
	if r := dig(t, ll.lan, dnsAlias, "g-later.example.com", "A"); r.status != "NOERROR" {
		t.Fatalf("after portLife: %s", r.out)
	}
	if ll.guard.dialed("udp") == before {
		t.Fatal("a query past portLife went out on an old socket")
	}
	// An idle loop closes them.
	eventually(t, "the idle loops to close their upstream sockets", func() bool { return upstreamSockets(t) == 0 })
}

// TestLoopClientRetryKicks: a client asks again while the loop forwards
// its question; the retry joins the flight on a worker and kicks the
// loop, which asks the upstream again at once instead of after the RTO.
func TestLoopClientRetryKicks(t *testing.T) {
	ll := newLoopLab(t)
	ll.up.set(func(b *badUpstream) { b.dropFirst = true })
	// Warm up the upstream's estimate, then hold its RTO at the most: the
	// timer alone would ask again only after a second.
	if r := dig(t, ll.lan, dnsAlias, "g-warm.example.com", "A"); r.status != "NOERROR" {
		t.Fatalf("warm-up: %s", r.out)
	}
	u := ll.upstream()
	u.mu.Lock()
	u.rtt.rto = maxRTO
	u.mu.Unlock()
	retries := ll.srv.Status().Forward.ClientRetries

	conn, err := ll.lan.DialContext(context.Background(), &net.Dialer{}, "udp", dnsAlias+":53")
	must(t, err)
	defer conn.Close()
	co := &dns.Conn{Conn: conn}
	const name = "g-kick.example.com."
	q := newQuery(name, dns.TypeA)
	q.Id = 1
	must(t, co.WriteMsg(q))
	eventually(t, "the first copy upstream", func() bool { return ll.up.seen(name) == 1 })
	time.Sleep(2 * minRTO)
	q.Id = 2
	must(t, co.WriteMsg(q)) // the client's retry, on the same socket: the same loop
	co.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := map[uint16]bool{}
	for range 2 {
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("answers %v: %v", got, err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("answer %d: %v", r.Id, r)
		}
		got[r.Id] = true
	}
	if n := ll.srv.Status().Forward.ClientRetries - retries; n != 1 {
		t.Fatalf("%d client retries counted, want 1: the kick did not reach the loop", n)
	}
	if n := ll.up.seen(name); n != 2 {
		t.Fatalf("the upstream was asked %d times, want 2", n)
	}
}

// TestLoopSilentTimeout: with the only upstream silent until the deadline,
// a UDP client gets no reply (it asks again by itself) and a TCP client
// gets SERVFAIL; a refusing upstream is still SERVFAIL over UDP.
func TestLoopSilentTimeout(t *testing.T) {
	ll := newLoopLab(t, func(c *Config) { c.Timeout = time.Second })
	ll.up.set(func(b *badUpstream) { b.blackhole = true })
	before := ll.srv.Status()
	if r := dig(t, ll.lan, dnsAlias, "+time=3", "+tries=1", "g-silent1.example.com", "A"); r.status != "" {
		t.Fatalf("UDP, every upstream silent: %s", r.out)
	}
	if r := dig(t, ll.lan, dnsAlias, "+tcp", "+time=3", "+tries=1", "g-silent2.example.com", "A"); r.status != "SERVFAIL" {
		t.Fatalf("TCP, every upstream silent: %s", r.out)
	}
	st := ll.srv.Status()
	if d := st.ByStage["dropped"] - before.ByStage["dropped"]; d != 1 || st.Forward.Timeouts-before.Forward.Timeouts != 2 {
		t.Fatalf("dropped %d (want 1), timeouts %d (want 2)", d, st.Forward.Timeouts-before.Forward.Timeouts)
	}
	// The upstream back: the client's retry is answered.
	ll.up.set(func(b *badUpstream) { b.blackhole = false })
	if r := dig(t, ll.lan, dnsAlias, "g-silent1.example.com", "A"); r.status != "NOERROR" {
		t.Fatalf("the retry, upstream back: %s", r.out)
	}
}
