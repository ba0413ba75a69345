package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"gatewayd/lab"
)

// badUpstream is a DNS server in a lab namespace that misbehaves on
// demand, the way real upstreams and the links to them do. Every name gets
// an A record, 93.184.216.34 with TTL 300, except these (after the "g-" or
// "u-" of the server that asks):
//
//	multi.*      four addresses
//	short*       TTL 1
//	alias*       a CNAME to www.example.com. first
//	notimp*      NOTIMP
//	slow*        answered after slowBy
type badUpstream struct {
	mu          sync.Mutex
	dropFirst   bool          // the first copy of each question is lost
	slowBy      time.Duration // how late slow* names are answered
	blackhole   bool          // nothing is answered
	lateBy      time.Duration // every answer is sent this late (an upstream, or a box, under load)
	formerrEDNS bool          // FORMERR to every query with an OPT record
	topBitTTL   bool          // TTLs of 2^31+1
	extra       bool          // out-of-bailiwick records ride along
	copies      map[string]int
	ports       map[netip.Addr][]int // source ports by client
}

func startBadUpstream(t *testing.T, ns *lab.Namespace, addr string) *badUpstream {
	t.Helper()
	b := &badUpstream{copies: map[string]int{}, ports: map[netip.Addr][]int{}}
	ctx, lc := context.Background(), &net.ListenConfig{}
	pc, err := ns.ListenPacket(ctx, lc, "udp", addr+":53")
	must(t, err)
	ln, err := ns.Listen(ctx, lc, "tcp", addr+":53")
	must(t, err)
	for _, srv := range []*dns.Server{{PacketConn: pc, UDPSize: 4096}, {Listener: ln}} {
		srv.Handler = dns.HandlerFunc(b.serve)
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return b
}

// set changes the misbehaviour under the lock.
func (b *badUpstream) set(fn func(b *badUpstream)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(b)
}

// seen is how many copies of name (any type) arrived.
func (b *badUpstream) seen(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.copies[dns.Fqdn(strings.ToLower(name))]
}

func (b *badUpstream) serve(w dns.ResponseWriter, q *dns.Msg) {
	name := strings.ToLower(q.Question[0].Name)
	from, _ := netip.ParseAddrPort(w.RemoteAddr().String())
	b.mu.Lock()
	b.copies[name]++
	first := b.copies[name] == 1
	b.ports[from.Addr()] = append(b.ports[from.Addr()], int(from.Port()))
	drop := b.blackhole || b.dropFirst && first
	formerr := b.formerrEDNS && q.IsEdns0() != nil
	ttl, extra, slow, late := uint32(300), b.extra, b.slowBy, b.lateBy
	if b.topBitTTL {
		ttl = 1<<31 + 1
	}
	b.mu.Unlock()
	if drop {
		return
	}
	time.Sleep(late) // the server runs each query on a goroutine of its own
	m := new(dns.Msg).SetReply(q)
	m.RecursionAvailable = true
	if formerr {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	if o := q.IsEdns0(); o != nil {
		m.SetEdns0(1232, o.Do())
	}
	owner := q.Question[0].Name
	a := func(n string, addr string) dns.RR { return aRecord(n, netip.MustParseAddr(addr), ttl) }
	label := strings.SplitN(name, ".", 2)[0]
	if p, rest, ok := strings.Cut(label, "-"); ok && (p == "g" || p == "u") {
		label = rest
	}
	switch {
	case strings.HasPrefix(label, "notimp"):
		m.Rcode = dns.RcodeNotImplemented
	case strings.HasPrefix(label, "slow"):
		time.Sleep(slow)
		m.Answer = []dns.RR{a(owner, "93.184.216.34")}
	case strings.HasPrefix(label, "short"):
		m.Answer = []dns.RR{aRecord(owner, netip.MustParseAddr("93.184.216.34"), 1)}
	case strings.HasPrefix(label, "alias"):
		m.Answer = []dns.RR{&dns.CNAME{Hdr: header(owner, dns.TypeCNAME, ttl), Target: "www.example.com."}, a("www.example.com.", "93.184.216.34")}
	case label == "multi":
		for i := range 4 {
			m.Answer = append(m.Answer, a(owner, fmt.Sprintf("93.184.216.%d", 10+i)))
		}
	case q.Question[0].Qtype == dns.TypeA:
		m.Answer = []dns.RR{a(owner, "93.184.216.34")}
	}
	if extra && m.Rcode == dns.RcodeSuccess {
		m.Answer = append(m.Answer, a("victim.example.com.", "6.6.6.6"), a("nas.home.arpa.", "6.6.6.6"))
		m.Ns = append(m.Ns, &dns.NS{Hdr: header("evil.example.", dns.TypeNS, ttl), Ns: "ns.evil.example."})
		m.Extra = append(m.Extra, a("ns.evil.example.", "6.6.6.6"))
	}
	w.WriteMsg(m)
}

// unboundPeer is unbound in a lab namespace, forwarding to the same
// misbehaving upstreams as the server under test: the yardstick.
type unboundPeer struct {
	ns     *lab.Namespace
	addr   string
	dir    string
	cmd    *exec.Cmd
	cancel context.CancelFunc
}

// start (re)starts unbound, fresh, forwarding to upstreams, with extra
// lines in its server section; it returns when unbound answers.
func (u *unboundPeer) start(t *testing.T, upstreams []string, extra ...string) {
	t.Helper()
	u.stop()
	var sb strings.Builder
	fmt.Fprintf(&sb, "server:\n\tinterface: %s\n\taccess-control: 192.168.1.0/24 allow\n", u.addr)
	for _, l := range []string{"num-threads: 1", `chroot: ""`, `username: ""`, `pidfile: ""`, "use-syslog: no",
		`logfile: ""`, "verbosity: 0", "do-ip6: no", `module-config: "iterator"`, `local-zone: "home.arpa." static`,
		`local-data: "nas.home.arpa. 60 A 192.168.1.20"`} {
		fmt.Fprintf(&sb, "\t%s\n", l)
	}
	for _, l := range extra {
		fmt.Fprintf(&sb, "\t%s\n", l)
	}
	sb.WriteString("remote-control:\n\tcontrol-enable: no\nforward-zone:\n\tname: \".\"\n")
	for _, a := range upstreams {
		fmt.Fprintf(&sb, "\tforward-addr: %s\n", a)
	}
	conf := filepath.Join(u.dir, "unbound.conf")
	must(t, os.WriteFile(conf, []byte(sb.String()), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := u.ns.Start(ctx, "unbound", "-d", "-c", conf)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	u.cmd, u.cancel = cmd, cancel
	lab.Eventually(t, 10*time.Second, func() error {
		if r := dig(t, u.ns, u.addr, "+time=1", "nas.home.arpa", "A"); r.status != "NOERROR" {
			return fmt.Errorf("unbound not serving yet: %s", r.out)
		}
		return nil
	})
}

// stop ends the unbound this peer started, by its own process group.
func (u *unboundPeer) stop() {
	if u.cmd == nil {
		return
	}
	u.cancel()
	u.cmd.Wait()
	u.cmd = nil
}
