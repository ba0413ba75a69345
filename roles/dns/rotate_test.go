package dns

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// firstAddrs reads the address records of a reply in order.
func firstAddrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rrAddr(rr); ok {
			out = append(out, a.String())
		}
	}
	return out
}

// rotations checks that answers for IDs 0..n-1 are the n rotations of want.
func rotations(t *testing.T, what string, want []string, answer func(id uint16) []string) {
	t.Helper()
	for id := range uint16(len(want)) {
		k := int(id) % len(want)
		if got, rot := answer(id), append(slices.Clone(want[k:]), want[:k]...); !slices.Equal(got, rot) {
			t.Errorf("%s, ID %d: %v, want %v", what, id, got, rot)
		}
	}
}

// TestLocalRotation: a local name's addresses come out rotated by the
// query ID, on the wire path and the general path alike.
func TestLocalRotation(t *testing.T) {
	c := siteConfig(func(c *Config) {
		for i := range 3 {
			c.Names = append(c.Names, Name{"pool.home.arpa.", netipAddr4(192, 168, 1, byte(30+i))})
		}
		c.Names = append(c.Names, Name{"pool.home.arpa.", netip.MustParseAddr("fd00::30")})
	})
	z := buildZone(c, newLeaseTable(), nil, &nextStage{})
	want := []string{"192.168.1.30", "192.168.1.31", "192.168.1.32"}
	for _, name := range []string{"pool.home.arpa.", "pool."} {
		rotations(t, name+" general", want, func(id uint16) []string {
			req := testRequest(name, dns.TypeA)
			req.msg.Id = id
			return firstAddrs(z.serve(context.Background(), req))
		})
		rotations(t, name+" wire", want, func(id uint16) []string {
			q := newQuery(name, dns.TypeA)
			q.Id = id
			raw, err := q.Pack()
			must(t, err)
			var wq wireQuery
			if !parseWireQuery(raw, &wq) {
				t.Fatal("the fast path declines")
			}
			full := wq.lowerName()
			if isSingleLabel(full) {
				full += z.domain
			}
			out, ok := z.wireAddrs(&wq, make([]byte, 0, readBuffer), full)
			if !ok {
				t.Fatal("no wire answer")
			}
			m := new(dns.Msg)
			must(t, m.Unpack(out))
			return firstAddrs(m)
		})
	}
}

// TestCacheRotation: a cached answer's address RRset is rotated by the
// query ID behind its CNAME, on both paths, and its TTLs age all the same.
func TestCacheRotation(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	var want []string
	up := &scripted{answer: func(req *request) *dns.Msg {
		m := req.reply(dns.RcodeSuccess)
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: header(req.q.Name, dns.TypeCNAME, 600), Target: "edge.example.net."})
		for i := range 4 {
			m.Answer = append(m.Answer, aRecord("edge.example.net.", netipAddr4(93, 184, 216, byte(i)), uint32(300+i)))
		}
		return m
	}}
	for i := range 4 {
		want = append(want, fmt.Sprintf("93.184.216.%d", i))
	}
	c := newTestCache(100, defaultPolicy, up, clk)
	c.serve(context.Background(), testRequest("www.example.com.", dns.TypeA))
	clk.add(10 * time.Second)
	s := New(Options{Logger: discard})
	var wire, general []string
	rotations(t, "general", want, func(id uint16) []string {
		req := testRequest("www.example.com.", dns.TypeA)
		req.msg.Id = id
		m := c.serve(context.Background(), req)
		s.finish(req, m)
		general = append(general, m.String())
		return firstAddrs(m)
	})
	rotations(t, "wire", want, func(id uint16) []string {
		q := newQuery("www.example.com.", dns.TypeA)
		q.Id = id
		out, ok := cacheWire(t, c, q, clk.now())
		if !ok {
			t.Fatal("no wire answer")
		}
		m := new(dns.Msg)
		must(t, m.Unpack(out))
		wire = append(wire, m.String())
		return firstAddrs(m)
	})
	for i := range wire {
		if !strings.EqualFold(wire[i], general[i]) {
			t.Errorf("ID %d: the wire path differs:\n%s\nwant\n%s", i, wire[i], general[i])
		}
	}
	if up.calls.Load() != 1 {
		t.Fatalf("%d upstream calls", up.calls.Load())
	}
}
