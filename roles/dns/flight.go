package dns

import (
	"context"
	"sync"
)

// flight merges identical concurrent work: while one caller runs fn for a
// key, the others with the same key wait for its result instead of running
// fn again (the idea of x/sync/singleflight, kept to what the cache needs).
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done    chan struct{}
	val     V
	waiters int // callers that joined; guarded by flight.mu
}

// do runs fn for key unless a call for key is running, in which case it
// waits for that call's result, or for ctx to end (then it returns the zero
// V). joined reports whether the result came from another caller's fn. The
// result is shared between callers: treat it as read-only.
func (g *flight[K, V]) do(ctx context.Context, key K, fn func() V) (v V, joined bool) {
	g.mu.Lock()
	if c, ok := g.calls[key]; ok {
		c.waiters++
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.val, true
		case <-ctx.Done():
			var zero V
			return zero, true
		}
	}
	if g.calls == nil {
		g.calls = map[K]*flightCall[V]{}
	}
	c := &flightCall[V]{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()

	// Clean up even when fn panics, so waiters are released.
	defer func() {
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val = fn()
	return c.val, false
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
