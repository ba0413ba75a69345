package dhcp

import (
	"cmp"
	"slices"
)

// Addresses whose lease has ended are reused least recently used first,
// as ISC dhcpd does: each pool queues them in the order they were freed
// (released, expired, or left by a client that moved), and the address a
// client held longest ago goes first. Since an ended binding keeps its
// client's key, a returning client most likely finds its own address
// still free, and gets it back (allocator.choose tries it first).
// Addresses never leased go before any of them.

// freeEntry is one address in a pool's free queue; it is stale once the
// address's binding has been replaced or freed again (seq differs).
type freeEntry struct {
	addr uint32
	seq  uint64
}

// pushFree queues b's address as freed now.
func (a *allocator) pushFree(p *pool, b *binding) {
	a.freeSeq++
	b.freed = a.freeSeq
	p.free = append(p.free, freeEntry{b.addr, a.freeSeq})
	if live := len(p.free) - p.freeHead; live > 2*p.size()+64 {
		a.compactFree(p)
	}
}

// popFree takes the least recently freed address of p that is still free.
func (a *allocator) popFree(p *pool, now, nowNs int64) (uint32, bool) {
	for p.freeHead < len(p.free) {
		e := p.free[p.freeHead]
		p.freeHead++
		if a.freeValid(p, e) && a.available(e.addr, noClient, now, nowNs) {
			if p.freeHead > 1024 && 2*p.freeHead > len(p.free) {
				p.free, p.freeHead = append(p.free[:0], p.free[p.freeHead:]...), 0
			}
			return e.addr, true
		}
	}
	p.free, p.freeHead = p.free[:0], 0
	return 0, false
}

// freeValid reports whether e still stands for a free address.
func (a *allocator) freeValid(p *pool, e freeEntry) bool {
	b := a.byAddr[e.addr]
	return b != nil && b.freed == e.seq && b.state == bindExpired && p.contains(e.addr) && !testBit(p.used, e.addr-p.start)
}

// compactFree drops the stale entries of p's queue.
func (a *allocator) compactFree(p *pool) {
	out := p.free[:0]
	for _, e := range p.free[p.freeHead:] {
		if a.freeValid(p, e) {
			out = append(out, e)
		}
	}
	p.free, p.freeHead = out, 0
}

// queueFree fills the new pools' queues from the ended bindings, the
// earliest ended first (a released or expired binding's expiry is when it
// ended).
func (a *allocator) queueFree() {
	var ended []*binding
	for addr, b := range a.byAddr {
		if p := a.poolOf(addr); b.state == bindExpired && p != nil && !testBit(p.used, addr-p.start) {
			ended = append(ended, b)
		}
	}
	slices.SortFunc(ended, func(x, y *binding) int {
		return cmp.Or(cmp.Compare(x.expires, y.expires), cmp.Compare(x.addr, y.addr))
	})
	for _, b := range ended {
		a.pushFree(a.poolOf(b.addr), b)
	}
}
