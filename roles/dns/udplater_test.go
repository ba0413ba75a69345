package dns

import (
	"testing"

	"github.com/miekg/dns"
)

// TestWorkersBounded: with maxWorkers busy no worker starts, and the query
// is answered SERVFAIL at once, counted as overload; a worker that leaves
// makes room again.
func TestWorkersBounded(t *testing.T) {
	s := testServer(t, newFakeNet())
	u := &udpServer{s: s, slow: make(chan slowQuery), done: make(chan struct{})}
	client := lanClient.AddrPort().Addr().Unmap()
	q := slowQuery{client: client, m: newQuery("www.example.com.", dns.TypeA)}

	u.workers.Store(maxWorkers)
	if u.answerLater(q) {
		t.Fatal("a worker started past maxWorkers")
	}
	if n := u.workers.Load(); n != maxWorkers {
		t.Fatalf("%d workers counted, want %d", n, maxWorkers)
	}
	m := s.overloaded(q.m, client)
	if m == nil || m.Rcode != dns.RcodeServerFailure || m.Id != q.m.Id || !m.Response {
		t.Fatalf("the reply past maxWorkers: %v", m)
	}
	if n := s.counters.byStage[byOverload].Load(); n != 1 {
		t.Fatalf("overload counted %d times, want once", n)
	}

	// Room for one: it starts, and leaves when the server closes. (The
	// server stopped: its query gets no reply, the worker goes idle.)
	s.pipe.Store(nil)
	u.workers.Store(maxWorkers - 1)
	if !u.answerLater(q) {
		t.Fatal("no worker started below maxWorkers")
	}
	close(u.done)
	u.wg.Wait()
	if n := u.workers.Load(); n != maxWorkers-1 {
		t.Fatalf("%d workers counted after one left, want %d", n, maxWorkers-1)
	}
	if s.overloaded(q.m, client) != nil {
		t.Fatal("a stopped server answered")
	}
}
