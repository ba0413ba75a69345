package dns

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// A latency lands in the first bucket whose bound it does not exceed.
func TestLatencyBuckets(t *testing.T) {
	if !slices.IsSorted(queryBounds[:]) || len(queryBounds) != numBuckets-1 {
		t.Fatalf("bounds %v", queryBounds)
	}
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {25 * time.Microsecond, 0}, {26 * time.Microsecond, 1}, {time.Millisecond, 5},
		{2 * time.Second, 15}, {2500 * time.Millisecond, 15}, {time.Hour, 16},
	} {
		if got := bucketOf(tt.d); got != tt.want {
			t.Errorf("bucketOf(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
	var l latencies
	a, b := l.take(), l.take()
	a.observe(byLocal, 30*time.Microsecond, 3)
	b.observe(byLocal, 2*time.Millisecond, 1)
	l.shared.observe(byForward, 20*time.Millisecond, 1)
	l.shared.observe(byNone, time.Second, 1) // no reply: not counted
	l.give(a)
	if l.take() != a || len(l.loops) != 2 {
		t.Error("a loop's distribution was not handed to the next loop")
	}
	got := l.snapshot()
	loc := got["local"]
	if len(got) != 2 || loc.Count != 4 || loc.Counts[1] != 3 || loc.Counts[6] != 1 || got["forward"].Count != 1 {
		t.Fatalf("snapshot %+v", got)
	}
	if want := 3*30e-6 + 2e-3; loc.Sum < want*0.999 || loc.Sum > want*1.001 {
		t.Errorf("local sum %v, want %v", loc.Sum, want)
	}
}

// Every reply the loops, the TCP listener and the slow-query workers send
// is in the distribution of the stage that answered it: as many as the
// stage's counter, local names and forwarded names alike.
func TestLatencyByStage(t *testing.T) {
	ll := newLoopLab(t)
	const local, forwarded = 120, 30
	askMany(t, ll.lan, dnsAlias, local, func(int) string { return "nas.home.arpa." })
	askMany(t, ll.lan, dnsAlias, forwarded, func(i int) string { return fmt.Sprintf("g-lat%d.example.com.", i) })
	if r := dig(t, ll.lan, dnsAlias, "+tcp", "nas.home.arpa", "A"); r.status != "NOERROR" {
		t.Fatalf("over TCP: %s", r.out)
	}
	if r := dig(t, ll.lan, dnsAlias, "www.home.arpa", "A"); r.status != "NOERROR" {
		t.Fatalf("a CNAME out of the zone (a worker's): %s", r.out)
	}
	// A batch's replies are counted just after they are sent: the client
	// may have them first.
	var st Status
	eventually(t, "the latencies to match the counters", func() bool {
		st = ll.srv.Status()
		for stage, n := range st.ByStage {
			if stage != "dropped" && st.Latency[stage].Count != n {
				return false
			}
		}
		return len(st.Latency) == len(st.ByStage)-min(1, int(st.ByStage["dropped"]))
	})
	t.Logf("by stage %v", st.ByStage)
	if n := st.Latency["local"].Count; n < local+1 {
		t.Errorf("local: %d observed, want at least %d", n, local+1)
	}
	if n := st.Latency["forward"].Count; n < forwarded {
		t.Errorf("forward: %d observed, want at least %d", n, forwarded)
	}
	for stage, h := range st.Latency {
		var sum uint64
		for _, c := range h.Counts {
			sum += c
		}
		if sum != h.Count || len(h.Counts) != len(h.Bounds)+1 || h.Sum <= 0 {
			t.Errorf("%s: %+v", stage, h)
		}
	}
}
