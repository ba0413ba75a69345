package dns

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// syncBuffer is a log sink safe for the query log's timer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(b.b.String()), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// loggedServer is testServer with the query log on (or off), writing text
// lines without times into the returned buffer.
func loggedServer(t *testing.T, on bool) (*Server, *syncBuffer) {
	t.Helper()
	s := testServer(t, upstreamSite(), func(c *Config) { c.LogQueries = on })
	buf := &syncBuffer{}
	s.qlog.log = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	return s, buf
}

// TestQueryLogStages: one line per query, from the fast path and the
// general path, over UDP and TCP, for every stage that answers.
func TestQueryLogStages(t *testing.T) {
	s, buf := loggedServer(t, true)
	client := lanClient.AddrPort().Addr().Unmap()
	udp := func(q *dns.Msg) {
		raw, err := q.Pack()
		must(t, err)
		if out, later := s.handleUDP(raw, client, new(wireQuery), nil, time.Now()); out == nil && later != nil {
			respondTo(s, lanClient, later) // as answerLater does
		}
	}
	udp(newQuery("www.example.com.", dns.TypeA))                  // forwarded
	udp(newQuery("WWW.example.com.", dns.TypeA))                  // a hit, on the fast path
	udp(newQuery("nas.home.arpa.", dns.TypeAAAA))                 // local, on the fast path
	udp(newQuery("nothere.home.arpa.", dns.TypeA))                // local, the general path
	udp(newQuery("printer.local.", dns.TypeA))                    // special
	respondTo(s, otherClient, newQuery("a.example.", dns.TypeMX)) // refused
	respondTo(s, lanTCP, newQuery("home.arpa.", dns.TypeAXFR))    // before the pipeline
	udp(newQuery("a.example.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }))
	want := []string{
		`level=INFO msg=query client=192.168.1.50 name=www.example.com. type=A rcode=NOERROR stage=forward`,
		`level=INFO msg=query client=192.168.1.50 name=www.example.com. type=A rcode=NOERROR stage=cache`,
		`level=INFO msg=query client=192.168.1.50 name=nas.home.arpa. type=AAAA rcode=NOERROR stage=local`,
		`level=INFO msg=query client=192.168.1.50 name=nothere.home.arpa. type=A rcode=NXDOMAIN stage=local`,
		`level=INFO msg=query client=192.168.1.50 name=printer.local. type=A rcode=NXDOMAIN stage=special`,
		`level=INFO msg=query client=203.0.113.9 name=a.example. type=MX rcode=REFUSED stage=refused`,
		`level=INFO msg=query client=192.168.1.50 name=home.arpa. type=AXFR rcode=REFUSED stage=server`,
		`level=INFO msg=query client=192.168.1.50 name=a.example. type=A rcode=FORMERR stage=server`,
	}
	got := buf.lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestQueryLogOff: by default nothing is logged, and the pipeline holds no
// log (the fast path's one check).
func TestQueryLogOff(t *testing.T) {
	s, buf := loggedServer(t, false)
	if s.pipe.Load().qlog != nil {
		t.Fatal("the pipeline holds the query log")
	}
	raw, err := newQuery("nas.home.arpa.", dns.TypeA).Pack()
	must(t, err)
	s.handleUDP(raw, lanClient.AddrPort().Addr().Unmap(), new(wireQuery), nil, time.Now())
	respondTo(s, lanClient, newQuery("x.local.", dns.TypeA))
	if l := buf.lines(); len(l) != 0 {
		t.Fatalf("logged with the log off: %q", l)
	}
}

// TestQueryLogRate: at most queryLogRate lines a second; the next second
// starts with how many went unlogged, and a second without queries still
// gets its summary.
func TestQueryLogRate(t *testing.T) {
	buf := &syncBuffer{}
	clk := &clock{t: time.Unix(1000, 0)}
	l := newQueryLog(slog.New(slog.NewTextHandler(buf, nil)))
	l.now = clk.now
	client := netip.MustParseAddr("192.168.1.50")
	for range queryLogRate + 50 {
		l.query(client, "a.example.", dns.TypeA, dns.RcodeSuccess, byCache)
	}
	clk.add(time.Second)
	l.query(client, "b.example.", dns.TypeA, dns.RcodeSuccess, byCache)
	got := buf.lines()
	if len(got) != queryLogRate+2 || !strings.Contains(got[queryLogRate], `msg="queries not logged" count=50 limit_per_second=100`) ||
		!strings.Contains(got[queryLogRate+1], "name=b.example.") {
		t.Fatalf("%d lines, the last two %q", len(got), got[max(0, len(got)-2):])
	}
	for range queryLogRate + 7 {
		l.query(client, "c.example.", dns.TypeA, dns.RcodeSuccess, byCache)
	}
	clk.add(time.Second) // and no query follows
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(strings.Join(buf.lines(), "\n"), "count=8") {
		if time.Now().After(deadline) {
			t.Fatalf("no summary for a second without a query after it: %q", buf.lines()[len(buf.lines())-1])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
