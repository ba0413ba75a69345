package dns

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A panic on a read loop's way to parking a miss, or while it settles a
// parked one, must not leave the miss's flight open (every caller that
// joins would wait for it for ever) nor keep a MaxFlight slot.

// mustPanic runs fn and reports whether it panicked.
func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	panicked := func() (v any) {
		defer func() { v = recover() }()
		fn()
		return nil
	}()
	if panicked == nil {
		t.Fatalf("%s did not panic", what)
	}
}

// flightRunning reports whether a call for key is running in c's flight.
func flightRunning(c *cacheStage, key cacheKey) bool {
	c.flight.mu.Lock()
	defer c.flight.mu.Unlock()
	_, ok := c.flight.calls[key]
	return ok
}

func keyOf(req *request) cacheKey {
	return cacheKey{name: req.name, qtype: req.q.Qtype, qclass: req.q.Qclass, do: req.do, cd: req.cd}
}

// TestParkPanicEndsFlight: a stage below the cache panics while a loop
// parks a miss.
func TestParkPanicEndsFlight(t *testing.T) {
	c := newTestCache(16, defaultPolicy, stageFunc(func(context.Context, *request) *dns.Msg { panic("boom") }), &clock{t: time.Now()})
	req := testRequest("www.example.com.", dns.TypeA)
	req.inline, req.loop = true, &loop{}
	mustPanic(t, "the stage", func() { c.serve(context.Background(), req) })
	if flightRunning(c, keyOf(req)) {
		t.Fatal("the flight of the miss is still open after the panic")
	}
}

// TestLoopSettlePanicEndsFlight: the forwarder's reply panics (here: a
// request without its route) while the loop settles a parked miss.
func TestLoopSettlePanicEndsFlight(t *testing.T) {
	s := New(Options{Logger: discard})
	defer s.Close()
	c := newTestCache(16, defaultPolicy, nil, &clock{t: time.Now()})
	req := testRequest("www.example.com.", dns.TypeA)
	key := keyOf(req)
	call, ok := c.flight.begin(key)
	if !ok {
		t.Fatal("no flight begun")
	}
	f := &forwarder{slots: make(chan struct{}, 1)}
	f.slots <- struct{}{}
	pk := &parked{req: req, f: f, cache: c, key: key, call: call}
	l := &loop{s: s}
	if m := l.settle(pk, nil, errSilent); m == nil || m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("a panic settling: %v", m)
	}
	if s.Status().Panics != 1 {
		t.Fatalf("panics counted: %d", s.Status().Panics)
	}
	select {
	case <-call.done:
	default:
		t.Fatal("the flight's callers still wait after the panic")
	}
	if flightRunning(c, key) {
		t.Fatal("the flight of the miss is still open after the panic")
	}
}

// TestForwardParkPanicReleasesSlot: the exchange panics as it begins (here:
// it sends on a loop without its socket tables).
func TestForwardParkPanicReleasesSlot(t *testing.T) {
	f := &forwarder{slots: make(chan struct{}, 1), timeout: time.Second}
	req := testRequest("www.example.com.", dns.TypeA)
	req.inline, req.loop = true, &loop{}
	u := newUpstream(netip.MustParseAddrPort("192.0.2.1:53"), newFakeNet(), nil, discard)
	defer u.close()
	req.route = &route{domain: ".", pool: &pool{upstreams: []*upstream{u}, stats: &forwardStats{}}}
	mustPanic(t, "the exchange", func() { f.serve(context.Background(), req) })
	if n := len(f.slots); n != 0 {
		t.Fatalf("%d MaxFlight slots held after the panic", n)
	}
}
