package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"gatewayd/lab"
)

// labSite is the test site built in network namespaces: one switch "lan",
// the gateway (eth1, the DNS alias added by the test), a client in the lan
// zone, a client in the lab zone (which may not use DNS), a live fake
// upstream at 192.168.1.254 and a dead one (a host with nothing on port 53)
// at 192.168.1.253. The server opens its sockets in the gateway through
// the guard.
type labSite struct {
	lab                  *lab.Lab
	gw, lan, other, dead *lab.Namespace
	up                   *fakeUpstream
	guard                *guardNet
	srv                  *Server
}

const (
	dnsAlias  = "192.168.1.3"
	liveUp    = "192.168.1.254"
	deadUp    = "192.168.1.253"
	lanAddr   = "192.168.1.50"
	otherAddr = "10.0.0.50"
)

func newLabSite(t *testing.T) *labSite {
	t.Helper()
	lab.RequireTools(t, "dig")
	l := lab.New(t)
	s := &labSite{lab: l}
	sw, err := l.Switch("lan")
	must(t, err)
	ns := func(name, addr string) *lab.Namespace {
		n, err := l.Namespace(name)
		must(t, err)
		_, err = l.Plug(sw, n, "eth1")
		must(t, err)
		if addr != "" {
			must(t, n.Addr("eth1", addr))
		}
		return n
	}
	s.gw = ns("gw", "10.0.0.1/24") // the lab alias; the DNS alias comes later
	s.lan = ns("lan", lanAddr+"/24")
	s.other = ns("other", otherAddr+"/24")
	s.other.MustRun(t, "ip", "route", "add", "192.168.1.0/24", "via", "10.0.0.1")
	upNS := ns("up", liveUp+"/24")
	s.dead = ns("dead", deadUp+"/24")
	s.up = startFakeUpstream(t, upNS, liveUp)
	s.guard = newGuardNet(t, s.gw)
	s.srv = New(Options{Logger: lab.Logger(t), Net: s.guard})
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// config is the site's Config with the lab's upstreams: the dead one first.
func (s *labSite) config(edits ...func(*Config)) *Config {
	return siteConfig(append([]func(*Config){func(c *Config) {
		c.Upstreams = []netip.AddrPort{netip.MustParseAddrPort(deadUp + ":53"), netip.MustParseAddrPort(liveUp + ":53")}
	}}, edits...)...)
}

// set calls Set, from the test's goroutine (the seam puts the sockets in
// the gateway), and checks that every socket the server opened so far is
// in the gateway's namespace: the handler goroutines run on threads in the
// host's namespace, and a socket made there would send upstream queries out
// of the host.
func (s *labSite) set(t testing.TB, c *Config) {
	t.Helper()
	must(t, s.srv.Set(context.Background(), c))
	s.guard.verify(t, s.srv)
}

// moveDNSAlias gives the DNS alias addr, as the controller derives it: the
// listeners, the alias's name and the box's own addresses among the
// clients move with it.
func moveDNSAlias(addr netip.Addr) func(*Config) {
	return func(c *Config) {
		old := c.Listen
		c.Listen = addr
		for i, n := range c.Names {
			if n.Name == c.NSName {
				c.Names[i].Addr = addr
			}
		}
		for i, p := range c.Allowed {
			if p == netip.PrefixFrom(old, old.BitLen()) {
				c.Allowed[i] = netip.PrefixFrom(addr, addr.BitLen())
			}
		}
	}
}

// digResult is what dig printed.
type digResult struct {
	status  string
	flags   map[string]bool
	answers []string // "name type rdata"
	out     string
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]+);`)
)

// dig runs dig in ns against server with args.
func dig(t testing.TB, ns *lab.Namespace, server string, args ...string) digResult {
	t.Helper()
	argv := append([]string{"dig", "@" + server, "+time=2", "+tries=1", "+nocookie"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := ns.Run(ctx, argv...)
	r := digResult{flags: map[string]bool{}, out: out}
	if m := digStatus.FindStringSubmatch(out); m != nil {
		r.status = m[1]
	}
	if m := digFlags.FindStringSubmatch(out); m != nil {
		for _, f := range strings.Fields(m[1]) {
			r.flags[f] = true
		}
	}
	inAnswer := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION"):
			inAnswer = true
		case inAnswer && (line == "" || strings.HasPrefix(line, ";;")):
			inAnswer = false
		case inAnswer:
			f := strings.Fields(line)
			if len(f) >= 5 {
				r.answers = append(r.answers, f[0]+" "+f[3]+" "+strings.Join(f[4:], " "))
			}
		}
	}
	return r
}

// fakeUpstream is an in-test DNS server in its own namespace that logs
// every query it sees.
type fakeUpstream struct {
	mu    sync.Mutex
	seen  []string // "name type"
	ports []int    // the source ports of the UDP queries
}

// sourcePorts is where the UDP queries came from.
func (f *fakeUpstream) sourcePorts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ports)
}

func startFakeUpstream(t *testing.T, ns *lab.Namespace, addr string) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	ctx, lc := context.Background(), &net.ListenConfig{}
	pc, err := ns.ListenPacket(ctx, lc, "udp", addr+":53")
	must(t, err)
	ln, err := ns.Listen(ctx, lc, "tcp", addr+":53")
	must(t, err)
	for _, srv := range []*dns.Server{{PacketConn: pc, UDPSize: 4096}, {Listener: ln}} {
		srv.Handler = dns.HandlerFunc(f.serve)
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return f
}

func (f *fakeUpstream) serve(w dns.ResponseWriter, q *dns.Msg) {
	name, qtype := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
	f.mu.Lock()
	f.seen = append(f.seen, name+" "+dns.TypeToString[qtype])
	if a, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		f.ports = append(f.ports, a.Port)
	}
	f.mu.Unlock()
	m := new(dns.Msg).SetReply(q)
	m.RecursionAvailable = true
	do := q.IsEdns0() != nil && q.IsEdns0().Do()
	a := func(addr string) dns.RR { return aRecord(q.Question[0].Name, netip.MustParseAddr(addr), 300) }
	switch {
	case qtype != dns.TypeA:
	case name == "nx.example.com.":
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{&dns.SOA{Hdr: header("example.com.", dns.TypeSOA, 300), Ns: "ns.example.com.", Mbox: "h.example.com.", Minttl: 300}}
	case name == "private.example.com.":
		m.Answer = []dns.RR{a("192.168.1.77")}
	case name == "signed.example.com.":
		m.Answer = []dns.RR{a("93.184.216.34")}
		if do {
			m.AuthenticatedData = true
			m.Answer = append(m.Answer, &dns.RRSIG{Hdr: header(q.Question[0].Name, dns.TypeRRSIG, 300), TypeCovered: dns.TypeA,
				Algorithm: dns.ECDSAP256SHA256, Labels: 3, OrigTtl: 300, Expiration: 2000000000, Inception: 1700000000,
				KeyTag: 12345, SignerName: "example.com.", Signature: "c2lnbmF0dXJl"})
		}
	case strings.HasPrefix(name, "big") || strings.HasPrefix(name, "huge"):
		n := 60
		if strings.HasPrefix(name, "huge") {
			n = 200
		}
		for i := range n {
			m.Answer = append(m.Answer, a(fmt.Sprintf("93.184.%d.%d", i/250, i%250)))
		}
	default:
		m.Answer = []dns.RR{a("93.184.216.34")}
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := 512
		if o := q.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// queries returns the log and clears it.
func (f *fakeUpstream) queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.seen
	f.seen = nil
	return out
}
