package dns

import (
	"context"
	"sync"
	"time"
)

// flight merges identical concurrent work: while one caller runs fn for a
// key, the others with the same key wait for its result instead of running
// fn again (the idea of x/sync/singleflight, kept to what the cache needs).
// Each caller that joins a running call kicks it: fn sees that as a sign
// that its result is late (a client asking again) and may hurry. A read
// loop runs a call without waiting (begin, own, end): it is kicked through
// its kicker instead.
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done     chan struct{}
	kick     chan struct{} // one pending kick at most
	kicker   kicker        // set by an owner that does not wait; guarded by flight.mu
	val      V
	panicked any // what fn panicked with
	waiters  int // callers that joined; guarded by flight.mu
}

// kicker is told of a kick by a caller that joins the call.
type kicker interface{ kick() }

// do runs fn for key unless a call for key is running, in which case it
// kicks that call and waits for its result. It returns early, with the
// zero V and stopped set, when ctx ends or stop fires: with stop set, fn
// runs on a goroutine of its own and finishes (its result serving the
// callers still waiting) whoever left; without it, the first caller runs
// fn itself. joined reports whether the result came from another
// caller's fn. The result is shared between callers: treat it as
// read-only. A panic in fn is raised again in the caller that started it.
func (g *flight[K, V]) do(ctx context.Context, key K, fn func(kick <-chan struct{}) V, stop <-chan time.Time) (v V, joined, stopped bool) {
	g.mu.Lock()
	c, joined := g.calls[key]
	if joined {
		c.waiters++
		select {
		case c.kick <- struct{}{}:
		default:
		}
		k := c.kicker
		g.mu.Unlock()
		if k != nil {
			k.kick()
		}
	} else {
		c = g.addLocked(key, make(chan struct{}, 1))
		g.mu.Unlock()
		if stop == nil {
			g.run(key, c, fn)
		} else {
			go g.run(key, c, fn)
		}
	}
	select {
	case <-c.done:
		if c.panicked != nil && !joined {
			panic(c.panicked)
		}
		return c.val, joined, false
	case <-stop:
	case <-ctx.Done():
	}
	var zero V
	return zero, joined, true
}

func (g *flight[K, V]) addLocked(key K, kick chan struct{}) *flightCall[V] {
	if g.calls == nil {
		g.calls = map[K]*flightCall[V]{}
	}
	c := &flightCall[V]{done: make(chan struct{}), kick: kick}
	g.calls[key] = c
	return c
}

// run runs fn for c and releases c's waiters, even when fn panics.
func (g *flight[K, V]) run(key K, c *flightCall[V], fn func(kick <-chan struct{}) V) {
	var v V
	defer func() {
		c.panicked = recover()
		g.end(key, c, v)
	}()
	v = fn(c.kick)
}

// begin starts a call for key that the caller runs without waiting, or
// reports false when one is running already (join it with do). Until own
// names its kicker, kicks are lost: the call has just begun, too soon for
// a kick to ask again.
func (g *flight[K, V]) begin(key K) (*flightCall[V], bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.calls[key]; ok {
		return nil, false
	}
	return g.addLocked(key, nil), true
}

// own makes k the kicker of c, begun by the caller.
func (g *flight[K, V]) own(c *flightCall[V], k kicker) {
	g.mu.Lock()
	c.kicker = k
	g.mu.Unlock()
}

// end publishes v as c's result and releases its waiters. It reports
// whether any caller joined (and so shares v).
func (g *flight[K, V]) end(key K, c *flightCall[V], v V) bool {
	g.mu.Lock()
	delete(g.calls, key)
	c.val = v
	shared := c.waiters > 0
	g.mu.Unlock()
	close(c.done)
	return shared
}

// waiting is how many callers wait on the call for key (for tests).
func (g *flight[K, V]) waiting(key K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c.waiters
	}
	return 0
}
