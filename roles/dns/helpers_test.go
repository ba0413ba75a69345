package dns

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// siteConfig is the Config of the site the tests use, after edits: the
// seed scenario (aliases router, dhcp, dns and lab; zone lan allowing dns,
// zone lab not) plus names for every case, as the controller derives it.
func siteConfig(edits ...func(*Config)) *Config {
	ap := netip.MustParseAddrPort
	c := &Config{
		Listen: netip.MustParseAddr("192.168.1.3"),
		Domain: "home.arpa.",
		TTL:    60,
		NSName: "dns.home.arpa.",
		Names: []Name{
			{"nas.home.arpa.", netip.MustParseAddr("192.168.1.20")},
			{"nas.home.arpa.", netip.MustParseAddr("fd00::20")},
			{"deep.sub2.home.arpa.", netip.MustParseAddr("192.168.1.21")},
			{"far.home.arpa.", netip.MustParseAddr("172.16.5.5")},
			{"printer.home.arpa.", netip.MustParseAddr("192.168.1.10")}, // a DHCP static lease
			{"router.home.arpa.", netip.MustParseAddr("192.168.1.1")},   // the aliases
			{"dhcp.home.arpa.", netip.MustParseAddr("192.168.1.2")},
			{"dns.home.arpa.", netip.MustParseAddr("192.168.1.3")},
			{"lab.home.arpa.", netip.MustParseAddr("10.0.0.1")},
		},
		CNAMEs: []CNAME{
			{"files.home.arpa.", "nas.home.arpa."},
			{"www.home.arpa.", "www.example.com."},
			{"loop1.home.arpa.", "loop2.home.arpa."},
			{"loop2.home.arpa.", "loop1.home.arpa."},
			{"dangling.home.arpa.", "nothere.home.arpa."},
		},
		Served: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("192.168.1.0/24")},
		// Zone lan allows dns, zone lab (10.0.0.0/24) does not; the
		// box's own aliases are served.
		Allowed: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("192.168.1.0/24"),
			netip.MustParsePrefix("192.168.1.1/32"), netip.MustParsePrefix("192.168.1.2/32"),
			netip.MustParsePrefix("192.168.1.3/32"),
		},
		Upstreams: []netip.AddrPort{ap("192.168.1.254:53")},
		Forward: []Forward{
			{"corp.example.", []netip.AddrPort{ap("10.8.0.53:53")}},
			{"sub.home.arpa.", []netip.AddrPort{ap("10.8.0.54:5353")}},
			{"16.172.in-addr.arpa.", []netip.AddrPort{ap("10.8.0.53:53")}},
		},
		Cache:     Cache{Size: 10000, MaxTTL: 24 * time.Hour, NegTTL: time.Hour},
		Rebind:    true,
		Timeout:   4 * time.Second,
		MaxFlight: 1024,
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

// discard is a logger for tests that check no log output.
var discard = slog.New(slog.DiscardHandler)

var testClient = netip.MustParseAddr("192.168.1.50")

// newQuery is a client query; opts are applied to it.
func newQuery(name string, qtype uint16, opts ...func(*dns.Msg)) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	for _, o := range opts {
		o(m)
	}
	return m
}

func withEDNS(size uint16, do bool) func(*dns.Msg) {
	return func(m *dns.Msg) { m.SetEdns0(size, do) }
}

func testRequest(name string, qtype uint16, opts ...func(*dns.Msg)) *request {
	return newRequest(newQuery(name, qtype, opts...), testClient, false)
}

// nextStage is a terminal stage that records what reached it and answers
// with a TXT record "next".
type nextStage struct {
	mu    sync.Mutex
	names []string
}

func (n *nextStage) serve(ctx context.Context, req *request) *dns.Msg {
	n.mu.Lock()
	n.names = append(n.names, req.name)
	n.mu.Unlock()
	req.by = byForward
	m := req.reply(dns.RcodeSuccess)
	m.Answer = []dns.RR{&dns.TXT{Hdr: header(req.q.Name, dns.TypeTXT, 60), Txt: []string{"next"}}}
	return m
}

func (n *nextStage) seen() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.names...)
}

// fromNext reports whether m is nextStage's answer.
func fromNext(m *dns.Msg) bool {
	if m == nil || len(m.Answer) != 1 {
		return false
	}
	t, ok := m.Answer[0].(*dns.TXT)
	return ok && len(t.Txt) == 1 && t.Txt[0] == "next"
}

// fakeNet is an in-memory network of upstream servers: a dialer that never
// opens a socket, so pure tests send nothing anywhere.
type fakeNet struct {
	mu      sync.Mutex
	servers map[string]*fakeServer
	dials   map[string]int // "udp addr" / "tcp addr" → count
	ports   []int          // the source ports UDP dials asked for (0: the kernel's choice)
}

// fakeServer is one upstream. answer makes its replies (nil: no reply),
// delay holds them back; refused makes reads fail like a port nobody
// listens on.
type fakeServer struct {
	answer  func(q *dns.Msg, tcp bool) []*dns.Msg
	delay   time.Duration
	refused bool
	mu      sync.Mutex
	ids     []uint16
	asked   []string // "name type", and " edns" for queries with an OPT record
}

// questions returns what the server was asked.
func (s *fakeServer) questions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

// count is how often the server was asked name.
func (s *fakeServer) count(name string) int {
	n := 0
	for _, q := range s.questions() {
		if strings.HasPrefix(q, name+" ") {
			n++
		}
	}
	return n
}

// dropFirst wraps an answer func so that the first copy of each question
// goes unanswered, as over a lossy link.
func dropFirst(answer func(*dns.Msg, bool) []*dns.Msg) func(*dns.Msg, bool) []*dns.Msg {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(q *dns.Msg, tcp bool) []*dns.Msg {
		mu.Lock()
		k := strings.ToLower(q.Question[0].String())
		first := !seen[k]
		seen[k] = true
		mu.Unlock()
		if first && !tcp {
			return nil
		}
		return answer(q, tcp)
	}
}

func newFakeNet() *fakeNet {
	return &fakeNet{servers: map[string]*fakeServer{}, dials: map[string]int{}}
}

func (f *fakeNet) add(addr string, s *fakeServer) *fakeServer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers[addr] = s
	return s
}

// DialContext makes fakeNet the upstreams' dialer.
func (f *fakeNet) DialContext(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	if network == "udp" {
		port := 0
		if la, ok := d.LocalAddr.(*net.UDPAddr); ok {
			port = la.Port
		}
		f.mu.Lock()
		f.ports = append(f.ports, port)
		f.mu.Unlock()
	}
	return f.dial(addr, network == "tcp")
}

func (f *fakeNet) dial(addr string, tcp bool) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	proto := "udp "
	if tcp {
		proto = "tcp "
	}
	f.dials[proto+addr]++
	s := f.servers[addr]
	if s == nil {
		s = &fakeServer{} // silent: a host that drops everything
	}
	s.mu.Lock()
	refused := s.refused
	s.mu.Unlock()
	if tcp && refused {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return &fakeConn{srv: s, tcp: tcp, in: make(chan []byte, 16), closed: make(chan struct{})}, nil
}

func (f *fakeNet) dialCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dials[key]
}

// answerWith is a fakeServer answer func: every query gets one reply made
// by fn from it.
func answerWith(fn func(q *dns.Msg) *dns.Msg) func(*dns.Msg, bool) []*dns.Msg {
	return func(q *dns.Msg, _ bool) []*dns.Msg { return []*dns.Msg{fn(q)} }
}

// aAnswer answers every A query with addr, TTL ttl.
func aAnswer(addr string, ttl uint32) func(*dns.Msg, bool) []*dns.Msg {
	return answerWith(func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		m.RecursionAvailable = true
		if q.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{aRecord(q.Question[0].Name, netip.MustParseAddr(addr), ttl)}
		}
		return m
	})
}

// fakeConn is one socket to a fakeServer: datagrams, or a byte stream with
// two-byte length prefixes for TCP.
type fakeConn struct {
	srv    *fakeServer
	tcp    bool
	in     chan []byte
	stream bytes.Buffer
	mu     sync.Mutex
	dl     time.Time
	once   sync.Once
	closed chan struct{}
}

func (c *fakeConn) Write(b []byte) (int, error) {
	raw := b
	if c.tcp {
		raw = b[2:]
	}
	q := new(dns.Msg)
	if err := q.Unpack(raw); err != nil {
		return 0, err
	}
	c.srv.mu.Lock()
	c.srv.ids = append(c.srv.ids, q.Id)
	asked := strings.ToLower(q.Question[0].Name) + " " + dns.TypeToString[q.Question[0].Qtype]
	if q.IsEdns0() != nil {
		asked += " edns"
	}
	c.srv.asked = append(c.srv.asked, asked)
	refused, answer, delay := c.srv.refused, c.srv.answer, c.srv.delay
	c.srv.mu.Unlock()
	if refused {
		c.in <- nil // the ICMP error arrives as a read error
		return len(b), nil
	}
	if answer == nil {
		return len(b), nil
	}
	var outs [][]byte
	for _, r := range answer(q, c.tcp) {
		out, err := r.Pack()
		if err != nil {
			return 0, err
		}
		if c.tcp {
			out = append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...)
		}
		outs = append(outs, out)
	}
	deliver := func() {
		for _, out := range outs {
			select {
			case c.in <- out:
			default: // nobody reads any more
			}
		}
	}
	if delay > 0 {
		time.AfterFunc(delay, deliver)
	} else {
		deliver()
	}
	return len(b), nil
}

func (c *fakeConn) Read(b []byte) (int, error) {
	if c.tcp && c.stream.Len() > 0 {
		return c.stream.Read(b)
	}
	c.mu.Lock()
	dl := c.dl
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-c.in:
		if p == nil {
			return 0, &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", syscall.ECONNREFUSED)}
		}
		if c.tcp {
			c.stream.Write(p)
			return c.stream.Read(b)
		}
		return copy(b, p), nil
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *fakeConn) Close() error                       { c.once.Do(func() { close(c.closed) }); return nil }
func (c *fakeConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *fakeConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *fakeConn) SetWriteDeadline(t time.Time) error { return nil }
func (c *fakeConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.dl = t
	c.mu.Unlock()
	return nil
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func netipAddr4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

// handleUDP answers one datagram as a read loop would, but off any loop
// (handleOn with none): the reply at once, or the query for a worker.
func (s *Server) handleUDP(raw []byte, client netip.Addr, q *wireQuery, buf []byte, now time.Time) (reply []byte, later *dns.Msg) {
	reply, _, later, _ = s.handleOn(nil, raw, client, q, buf, now)
	return reply, later
}
