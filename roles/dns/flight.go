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
// that its result is late (a client asking again) and may hurry.
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done     chan struct{}
	kick     chan struct{} // one pending kick at most
	val      V
	panicked any // what fn panicked with
	waiters  int // callers that joined; guarded by flight.mu
}

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
		g.mu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
	} else {
		if g.calls == nil {
			g.calls = map[K]*flightCall[V]{}
		}
		c = &flightCall[V]{done: make(chan struct{}), kick: make(chan struct{}, 1)}
		g.calls[key] = c
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

// run runs fn for c and releases c's waiters, even when fn panics.
func (g *flight[K, V]) run(key K, c *flightCall[V], fn func(kick <-chan struct{}) V) {
	defer func() {
		c.panicked = recover()
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val = fn(c.kick)
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
