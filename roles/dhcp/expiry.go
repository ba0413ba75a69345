package dhcp

import (
	"container/heap"
	"time"
)

// A lease's host name goes when the lease ends, not at the next sweep: the
// allocator keeps the name holders in a queue ordered by expiry, and the
// sweeper wakes at the earliest one to withdraw the names that ran out.
// Entries are not removed when a lease is renewed, released or replaced;
// one that no longer stands for its binding's name is skipped when it
// comes up, and the queue is rebuilt when stale entries dominate.

type nameExpiry struct {
	at int64 // Unix seconds: the binding's expiry when queued
	b  *binding
}

type nameQueue []nameExpiry

func (q nameQueue) Len() int           { return len(q) }
func (q nameQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q nameQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *nameQueue) Push(x any)        { *q = append(*q, x.(nameExpiry)) }
func (q *nameQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nameExpiry{}
	*q = old[:len(old)-1]
	return e
}

// queueName queues b, which holds its host name, to have it withdrawn at
// its expiry.
func (a *allocator) queueName(b *binding) {
	if len(a.nameq) > 2*len(a.byName)+1024 {
		a.rebuildNameQueue()
	}
	earliest, had := a.nextNameExpiry()
	heap.Push(&a.nameq, nameExpiry{at: b.expires, b: b})
	if (!had || b.expires < earliest) && a.onEarlier != nil {
		a.onEarlier()
	}
}

func (a *allocator) rebuildNameQueue() {
	q := a.nameq[:0]
	for _, b := range a.byName {
		q = append(q, nameExpiry{at: b.expires, b: b})
	}
	clear(a.nameq[len(q):cap(a.nameq)])
	a.nameq = q
	heap.Init(&a.nameq)
}

// nextNameExpiry returns the earliest queued expiry.
func (a *allocator) nextNameExpiry() (int64, bool) {
	if len(a.nameq) == 0 {
		return 0, false
	}
	return a.nameq[0].at, true
}

// expireNames withdraws the names of the leases that have ended by now.
func (a *allocator) expireNames(now int64) []nameChange {
	var out []nameChange
	for len(a.nameq) > 0 && a.nameq[0].at <= now {
		e := heap.Pop(&a.nameq).(nameExpiry)
		b := e.b
		if b.expires != e.at || b.state != bindActive || a.byAddr[b.addr] != b || a.byName[b.hostname] != b {
			continue // renewed, replaced or no longer holding the name
		}
		out = append(out, nameChange{host: b.hostname, addr: u32Addr(b.addr)})
		a.dropName(b)
	}
	return out
}

// sweeper ends expired leases every sweepEvery, and withdraws each lease's
// name when the lease ends, until stopped.
func (s *Server) sweeper(stopped chan struct{}) {
	full := time.NewTicker(s.sweepEvery)
	defer full.Stop()
	names := time.NewTimer(time.Hour)
	defer names.Stop()
	for {
		s.mu.Lock()
		at, ok := s.h.alloc.nextNameExpiry()
		s.mu.Unlock()
		if ok {
			// On the role's clock, which tests may set.
			names.Reset(time.Unix(at, 0).Sub(s.now()))
		} else {
			names.Stop()
		}
		select {
		case <-stopped:
			return
		case <-full.C:
			s.sweep()
		case <-names.C:
			s.expireNames()
		case <-s.earlier:
		}
	}
}

// sweep ends what has run out; nothing once the role is stopped (a
// sweeper that waited for s.mu while it stopped): the names are withdrawn,
// and the next start sweeps.
func (s *Server) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return
	}
	now := s.now()
	s.namesInOrder(s.h.alloc.sweep(now.Unix(), now.UnixNano()))
}

// expireNames withdraws the names that ran out; nothing once the role is
// stopped, as sweep.
func (s *Server) expireNames() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return
	}
	s.namesInOrder(s.h.alloc.expireNames(s.now().Unix()))
}

// nameSooner wakes the sweeper when a lease holding a name ends before
// the one it waits for; called with s.mu held.
func (s *Server) nameSooner() {
	select {
	case s.earlier <- struct{}{}:
	default:
	}
}
