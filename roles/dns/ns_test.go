package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"gatewayd/lab"
)

// TestLabPipeline runs the role in a namespace and asks it with dig from
// client namespaces: every stage, in order, on one site.
func TestLabPipeline(t *testing.T) {
	s := newLabSite(t)
	// Set before the alias exists: IP_FREEBIND lets the sockets bind anyway.
	s.set(t, s.config())
	s.gw.MustRun(t, "ip", "addr", "add", dnsAlias+"/24", "dev", "eth1")
	for _, st := range []struct {
		name string
		fn   func(*testing.T, *labSite)
	}{
		{"local zone", labLocalZone},
		{"failover", labFailover},
		{"cache", labCache},
		{"special names stay here", labSpecialNames},
		{"refused outside the served zones", labRefused},
		{"truncation and tcp", labTruncation},
		{"rebind", labRebind},
		{"dnssec passes through", labDNSSEC},
		{"lease names", labLeaseNames},
		{"malformed datagrams", labMalformed},
		{"all upstreams down", labAllDown},
	} {
		t.Run(st.name, func(t *testing.T) { st.fn(t, s) })
	}
}

func labLocalZone(t *testing.T, s *labSite) {
	r := dig(t, s.lan, dnsAlias, "nas.home.arpa", "A")
	if r.status != "NOERROR" || !r.flags["aa"] || !r.flags["ra"] || !slices.Contains(r.answers, "nas.home.arpa. A 192.168.1.20") {
		t.Fatalf("nas.home.arpa: %s", r.out)
	}
	for _, q := range [][]string{{"router.home.arpa", "A"}, {"printer.home.arpa", "A"}, {"files.home.arpa", "A"}, {"nas", "A"}, {"files", "A"}, {"-x", "192.168.1.20"}} {
		if r := dig(t, s.lan, dnsAlias, q...); r.status != "NOERROR" || len(r.answers) == 0 {
			t.Errorf("%v: %s", q, r.out)
		}
	}
	for _, name := range []string{"nothere.home.arpa", "nothere"} {
		r = dig(t, s.lan, dnsAlias, name, "A")
		if r.status != "NXDOMAIN" || !r.flags["aa"] || !strings.Contains(r.out, "SOA") {
			t.Errorf("%s: %s", name, r.out)
		}
	}
}

func labFailover(t *testing.T, s *labSite) {
	// The first upstream is a host with nothing on port 53.
	r := dig(t, s.lan, dnsAlias, "www.example.com", "A")
	if r.status != "NOERROR" || !slices.Contains(r.answers, "www.example.com. A 93.184.216.34") {
		t.Fatalf("with the first upstream dead: %s", r.out)
	}
	st := s.srv.Status()
	if st.Upstreams[0].Healthy || !st.Upstreams[1].Healthy {
		t.Fatalf("upstream health: %+v", st.Upstreams)
	}
}

func labCache(t *testing.T, s *labSite) {
	s.up.queries()
	for range 3 {
		dig(t, s.lan, dnsAlias, "cached.example.com", "A")
	}
	dig(t, s.lan, dnsAlias, "nx.example.com", "A")
	r := dig(t, s.lan, dnsAlias, "nx.example.com", "A")
	if r.status != "NXDOMAIN" {
		t.Fatalf("nx.example.com: %s", r.out)
	}
	if got := s.up.queries(); !slices.Equal(got, []string{"cached.example.com. A", "nx.example.com. A"}) {
		t.Fatalf("upstream saw %v, want each name once", got)
	}
}

func labSpecialNames(t *testing.T, s *labSite) {
	s.up.queries()
	names := [][]string{{"localhost", "A"}, {"printer.local", "A"}, {"x.onion", "A"}, {"foo.invalid", "A"},
		{"a.test", "AAAA"}, {"-x", "10.9.9.9"}, {"-x", "172.20.1.1"}, {"-x", "192.168.7.7"}, {"-x", "fe80::1"}, {"bare", "A"}}
	for _, q := range names {
		r := dig(t, s.lan, dnsAlias, q...)
		if r.status == "" || r.status == "SERVFAIL" {
			t.Errorf("%v: %s", q, r.out)
		}
	}
	if got := s.up.queries(); len(got) != 0 {
		t.Fatalf("special names reached the upstream: %v", got)
	}
	if r := dig(t, s.lan, dnsAlias, "localhost", "A"); !slices.Contains(r.answers, "localhost. A 127.0.0.1") {
		t.Fatalf("localhost: %s", r.out)
	}
}

func labRefused(t *testing.T, s *labSite) {
	r := dig(t, s.other, dnsAlias, "www.example.com", "A")
	if r.status != "REFUSED" || r.flags["ra"] {
		t.Fatalf("from the lab zone: %s", r.out)
	}
}

func labTruncation(t *testing.T, s *labSite) {
	r := dig(t, s.lan, dnsAlias, "+ignore", "+noedns", "big.example.com", "A")
	if !r.flags["tc"] || len(r.answers) != 0 {
		t.Fatalf("60 records over plain UDP: want TC and no answer records: %s", r.out)
	}
	r = dig(t, s.lan, dnsAlias, "+tcp", "big.example.com", "A")
	if r.flags["tc"] || len(r.answers) != 60 {
		t.Fatalf("over TCP: %d answers, %s", len(r.answers), r.out)
	}
	// 200 records do not fit the upstream's UDP answer either: the
	// server retries over TCP upstream.
	r = dig(t, s.lan, dnsAlias, "+tcp", "huge.example.com", "A")
	if len(r.answers) != 200 {
		t.Fatalf("huge over TCP: %d answers, %s", len(r.answers), r.out)
	}
}

func labRebind(t *testing.T, s *labSite) {
	r := dig(t, s.lan, dnsAlias, "private.example.com", "A")
	if r.status != "NOERROR" || len(r.answers) != 0 {
		t.Fatalf("a public name with a private address: %s", r.out)
	}
	if s.srv.Status().Rebind == 0 {
		t.Fatal("no rebind drop counted")
	}
}

func labDNSSEC(t *testing.T, s *labSite) {
	r := dig(t, s.lan, dnsAlias, "+dnssec", "signed.example.com", "A")
	if !r.flags["ad"] || !strings.Contains(r.out, "RRSIG") {
		t.Fatalf("with DO: %s", r.out)
	}
	r = dig(t, s.lan, dnsAlias, "+noad", "signed.example.com", "A")
	if r.flags["ad"] || strings.Contains(r.out, "RRSIG") {
		t.Fatalf("without DO or AD: %s", r.out)
	}
}

func labLeaseNames(t *testing.T, s *labSite) {
	laptop := netip.MustParseAddr("192.168.1.120")
	s.srv.PublishLease("Laptop", laptop)
	if r := dig(t, s.lan, dnsAlias, "laptop.home.arpa", "A"); !slices.Contains(r.answers, "laptop.home.arpa. A 192.168.1.120") {
		t.Fatalf("forward: %s", r.out)
	}
	if r := dig(t, s.lan, dnsAlias, "-x", "192.168.1.120"); !slices.Contains(r.answers, "120.1.168.192.in-addr.arpa. PTR laptop.home.arpa.") {
		t.Fatalf("reverse: %s", r.out)
	}
	s.srv.PublishLease("nas", netip.MustParseAddr("192.168.1.121"))
	if r := dig(t, s.lan, dnsAlias, "nas.home.arpa", "A"); len(r.answers) != 1 || !strings.HasSuffix(r.answers[0], "192.168.1.20") {
		t.Fatalf("a DHCP client named like a static host: %s", r.out)
	}
	// Withdrawn means gone at once, forward and reverse.
	s.srv.WithdrawLease("laptop", laptop)
	if r := dig(t, s.lan, dnsAlias, "laptop.home.arpa", "A"); r.status != "NXDOMAIN" {
		t.Fatalf("after the lease ended: %s", r.out)
	}
	if r := dig(t, s.lan, dnsAlias, "-x", "192.168.1.120"); r.status != "NXDOMAIN" {
		t.Fatalf("reverse after the lease ended: %s", r.out)
	}
}

func labMalformed(t *testing.T, s *labSite) {
	before := s.srv.Status().Malformed
	tests := []struct {
		name  string
		raw   []byte
		rcode int // -1: no reply
	}{
		{"short", []byte{1, 2, 3, 4, 5}, -1},
		{"truncated question", []byte{0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x'}, dns.RcodeFormatError},
		{"two questions", []byte{0xab, 0xcd, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1, 1, 'b', 0, 0, 1, 0, 1}, dns.RcodeFormatError},
		{"a response", []byte{0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, -1},
		{"update", []byte{0xab, 0xcd, 0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1}, dns.RcodeNotImplemented},
	}
	for _, tt := range tests {
		r, err := rawExchange(s.lan, dnsAlias, tt.raw)
		switch {
		case tt.rcode < 0 && err == nil:
			t.Errorf("%s: got a reply %v, want none", tt.name, r)
		case tt.rcode >= 0 && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.rcode >= 0 && (r.Rcode != tt.rcode || r.Id != 0xabcd || !r.RecursionAvailable):
			t.Errorf("%s: reply %v", tt.name, r)
		case tt.rcode >= 0 && tt.name != "truncated question" && len(r.Question) != 1:
			t.Errorf("%s: reply without its question: %v", tt.name, r)
		}
	}
	if got := s.srv.Status().Malformed - before; got != 3 {
		t.Errorf("malformed counted %d, want 3", got)
	}
	if r := dig(t, s.lan, dnsAlias, "nas.home.arpa"); r.status != "NOERROR" {
		t.Fatalf("after the garbage: %s", r.out)
	}
}

func labAllDown(t *testing.T, s *labSite) {
	// Two hosts with nothing on port 53: each refuses at once.
	s.set(t, s.config(func(c *Config) {
		c.Upstreams = []netip.AddrPort{netip.MustParseAddrPort(deadUp + ":53"), netip.MustParseAddrPort(otherAddr + ":53")}
	}))
	r := dig(t, s.lan, dnsAlias, "down.example.com", "A")
	if r.status != "SERVFAIL" {
		t.Fatalf("every upstream dead: %s", r.out)
	}
	if r := dig(t, s.lan, dnsAlias, "down2.example.com", "A"); r.status != "SERVFAIL" {
		t.Fatalf("every upstream marked down: %s", r.out)
	}
	if st := s.srv.Status(); st.Upstreams[0].Healthy || st.Upstreams[1].Healthy {
		t.Fatalf("upstreams: %+v", st.Upstreams)
	}
	if r := dig(t, s.lan, dnsAlias, "nas.home.arpa", "A"); r.status != "NOERROR" {
		t.Fatalf("local names with the upstreams down: %s", r.out)
	}
}

// TestLabListenerMove moves the DNS alias: the new address answers, the
// old one does not.
func TestLabListenerMove(t *testing.T) {
	s := newLabSite(t)
	s.gw.MustRun(t, "ip", "addr", "add", dnsAlias+"/24", "dev", "eth1")
	s.set(t, s.config())
	if r := dig(t, s.lan, dnsAlias, "nas.home.arpa"); r.status != "NOERROR" {
		t.Fatalf("before the move: %s", r.out)
	}
	// The same config again: nothing is rebuilt.
	p := s.srv.pipe.Load()
	s.set(t, s.config())
	if s.srv.pipe.Load() != p {
		t.Fatal("Set with an unchanged config built a new pipeline")
	}
	// A move to an address whose port 53 is taken fails and keeps serving,
	// also when the other program's socket allows SO_REUSEPORT (unbound's
	// do): the server's first socket binds alone.
	s.gw.MustRun(t, "ip", "addr", "add", "192.168.1.4/24", "dev", "eth1")
	moved := s.config(moveDNSAlias(netip.MustParseAddr("192.168.1.4")))
	for _, lc := range []*net.ListenConfig{{}, {Control: func(_, _ string, c syscall.RawConn) error { return reusePort(c) }}} {
		squatter, err := s.gw.ListenPacket(context.Background(), lc, "udp", "192.168.1.4:53")
		must(t, err)
		err = s.srv.Set(context.Background(), moved)
		if err == nil || !strings.Contains(err.Error(), "192.168.1.4:53") {
			t.Fatalf("Set onto a taken port: %v", err)
		}
		if r := dig(t, s.lan, dnsAlias, "nas.home.arpa"); r.status != "NOERROR" || s.srv.pipe.Load() != p {
			t.Fatalf("after the failed move the old state must keep serving: %s", r.out)
		}
		squatter.Close()
	}
	s.set(t, moved)
	if r := dig(t, s.lan, "192.168.1.4", "nas.home.arpa"); r.status != "NOERROR" {
		t.Fatalf("on the new address: %s", r.out)
	}
	if r := dig(t, s.lan, dnsAlias, "nas.home.arpa"); r.status != "" {
		t.Fatalf("the old address still answers: %s", r.out)
	}
	if st := s.srv.Status(); st.Addr != "192.168.1.4:53" {
		t.Fatalf("status addr %s", st.Addr)
	}
	// Stopping: the alias now belongs to another box. Every socket is
	// closed (the read loops woke and let go of theirs): the port binds.
	s.set(t, nil)
	if r := dig(t, s.lan, "192.168.1.4", "nas.home.arpa"); r.status != "" || s.srv.Status().Running {
		t.Fatalf("after the role left: %s", r.out)
	}
	for _, addr := range []string{dnsAlias, "192.168.1.4"} {
		pc, err := s.gw.ListenPacket(context.Background(), &net.ListenConfig{}, "udp", addr+":53")
		if err != nil {
			t.Fatalf("port 53 of %s after the role stopped: %v", addr, err)
		}
		pc.Close()
	}
}

// TestLabRecordChangeUnderLoad changes a record with Set while a client
// keeps asking: every query is answered, and the new address shows up.
func TestLabRecordChangeUnderLoad(t *testing.T) {
	s := newLabSite(t)
	s.gw.MustRun(t, "ip", "addr", "add", dnsAlias+"/24", "dev", "eth1")
	s.set(t, s.config())
	loop := startQueryLoop(t, s.lan, dnsAlias, "nas.home.arpa.")
	time.Sleep(200 * time.Millisecond)
	for i := range 10 {
		addr := netip.AddrFrom4([4]byte{192, 168, 1, byte(20 + i%2)})
		s.set(t, s.config(func(c *Config) { c.Names[0].Addr = addr }))
		time.Sleep(50 * time.Millisecond)
	}
	s.set(t, s.config(func(c *Config) { c.Names[0].Addr = netip.MustParseAddr("192.168.1.99") }))
	lab.Eventually(t, 5*time.Second, func() error { return loop.sawAddr("192.168.1.99") })
	sent, failed := loop.stop()
	if sent < 100 || failed != 0 {
		t.Fatalf("%d queries, %d failed; want none failed", sent, failed)
	}
	t.Logf("%d queries, all answered", sent)
}

// rawExchange sends raw bytes from ns to server:53 over UDP and reads one
// reply, waiting 500 ms.
func rawExchange(ns *lab.Namespace, server string, raw []byte) (*dns.Msg, error) {
	c, err := ns.DialContext(context.Background(), &net.Dialer{}, "udp", server+":53")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write(raw); err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		return nil, errors.Join(errors.New("unpacking the reply"), err)
	}
	return m, nil
}
