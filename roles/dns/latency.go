package dns

import (
	"sync"
	"sync/atomic"
	"time"
)

// queryBounds are the upper bounds, in seconds, of the buckets of the
// query latency distribution: from a local answer on an idle box (tens of
// microseconds) to a forwarded query that waited for its deadline. The
// last bucket, above every bound, takes the rest.
var queryBounds = [...]float64{
	25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
	1, 2.5,
}

// numBuckets is one more than the bounds; queryLimits are the bounds as
// durations.
const numBuckets = len(queryBounds) + 1

var queryLimits = func() (d [len(queryBounds)]time.Duration) {
	for i, b := range queryBounds {
		d[i] = time.Duration(b * float64(time.Second))
	}
	return d
}()

// bucketOf is the bucket a latency falls in: the first whose bound it
// does not exceed.
func bucketOf(d time.Duration) int {
	for i, b := range queryLimits {
		if d <= b {
			return i
		}
	}
	return numBuckets - 1
}

// Histogram is a distribution of observations (seconds): Counts[i] of
// them were at most Bounds[i] and above Bounds[i-1]; the last of Counts,
// one more than Bounds, were above every bound. The counts are per bucket,
// not cumulative. Count is their total, Sum the sum of the observations.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

// stageLatency is one latency distribution per answering stage. Its words
// are atomic only for Status, which reads them while a loop adds: an add
// nobody else writes costs no more than a plain one.
type stageLatency struct {
	buckets [numStages][numBuckets]atomic.Uint64
	sumNs   [numStages]atomic.Uint64
}

// observe counts n replies of stage by, each after d.
func (h *stageLatency) observe(by stageID, d time.Duration, n uint64) {
	if by == byNone || n == 0 {
		return // no reply: no latency
	}
	h.buckets[by][bucketOf(d)].Add(n)
	h.sumNs[by].Add(n * uint64(max(d, 0)))
}

// loopLatency is one read loop's distribution, kept apart from every
// other loop's: the padding keeps the next allocation off its last cache
// line, so two loops never write one line.
type loopLatency struct {
	stageLatency
	_ [64]byte
}

// latencies are the server's query latency distributions: one per read
// loop, and one shared by the rare paths (TCP, the slow-query workers).
// A loop's is never dropped: a loop that ends hands it to the next one to
// start, so the distributions only grow, across listener moves too.
type latencies struct {
	shared stageLatency

	mu    sync.Mutex
	loops []*loopLatency // every one handed out, ever
	free  []*loopLatency // those of loops that ended
}

// take hands a starting loop its distribution.
func (l *latencies) take() *loopLatency {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		h := l.free[n-1]
		l.free = l.free[:n-1]
		return h
	}
	h := new(loopLatency)
	l.loops = append(l.loops, h)
	return h
}

// give takes back the distribution of a loop that ended.
func (l *latencies) give(h *loopLatency) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.free = append(l.free, h)
}

// snapshot sums the distributions, by stage name; a stage that answered
// nothing is left out.
func (l *latencies) snapshot() map[string]Histogram {
	l.mu.Lock()
	all := []*stageLatency{&l.shared}
	for _, h := range l.loops {
		all = append(all, &h.stageLatency)
	}
	l.mu.Unlock()
	out := map[string]Histogram{}
	for by := range numStages {
		h := Histogram{Bounds: queryBounds[:], Counts: make([]uint64, numBuckets)}
		var ns uint64
		for _, s := range all {
			for i := range h.Counts {
				h.Counts[i] += s.buckets[by][i].Load()
			}
			ns += s.sumNs[by].Load()
		}
		for _, c := range h.Counts {
			h.Count += c
		}
		if h.Count > 0 {
			h.Sum = time.Duration(ns).Seconds()
			out[by.String()] = h
		}
	}
	return out
}

// batchAnswers counts, on a read loop, the replies of one batch answered at
// once, by stage, until the batch's replies are sent (loop.observe).
type batchAnswers struct {
	n    [numStages]uint32
	some bool
}

func (a *batchAnswers) add(by stageID) {
	a.n[by]++
	a.some = true
}

// observe counts the replies of the batch that arrived at now, sent just
// before: one clock read for all of them, and nothing when there were
// none. A reply sent early (the batch filled the reply buffers) is counted
// at the batch's end: a few microseconds long at most.
func (l *loop) observe(now time.Time) {
	a := &l.quick
	if !a.some {
		return
	}
	d := time.Since(now)
	for by, n := range a.n {
		if n > 0 {
			l.lat.observe(stageID(by), d, uint64(n))
		}
	}
	*a = batchAnswers{}
}
