package dns

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// cacheShards splits the cache so concurrent handlers rarely share a lock.
const cacheShards = 16

// cacheKey names one cached answer. DO and CD are part of it: a client that
// asked for DNSSEC records, or for unvalidated data, gets an answer fetched
// the same way.
type cacheKey struct {
	name   string // lower-case FQDN
	qtype  uint16
	qclass uint16
	do, cd bool
}

// cacheEntry is one stored answer, kept packed (compressed wire format):
// a cached A answer takes about a third of the memory of a *dns.Msg, and a
// hit unpacks it into fresh records, which it needs anyway. Times are Unix
// nanoseconds.
type cacheEntry struct {
	wire    []byte
	layout  wireLayout // for the UDP fast path (cachewire.go)
	stored  int64
	expires int64 // fresh until then
	staleTo int64 // may be served stale until then (= expires without serve-stale)
}

// cacheStore is a size-bounded map of answers. When a shard is full, put
// evicts an expired entry if it finds one among a few, else any entry: the
// random eviction CoreDNS's cache uses, with no bookkeeping on hits.
type cacheStore struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard

	hits, misses, stale, merged, evictions atomic.Uint64
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]*cacheEntry
}

// newCacheStore makes a cache holding about size answers.
func newCacheStore(size int) *cacheStore {
	c := &cacheStore{seed: maphash.MakeSeed(), perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = map[cacheKey]*cacheEntry{}
	}
	return c
}

func (c *cacheStore) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, k.name)%cacheShards]
}

// get returns the entry for k unless it is past its stale time, and whether
// it is still fresh.
func (c *cacheStore) get(k cacheKey, now time.Time) (e *cacheEntry, fresh bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	e = sh.m[k]
	sh.mu.RUnlock()
	t := now.UnixNano()
	switch {
	case e == nil:
		return nil, false
	case t < e.expires:
		return e, true
	case t < e.staleTo:
		return e, false
	}
	return nil, false
}

// put stores e under k, evicting another entry if the shard is full.
func (c *cacheStore) put(k cacheKey, e *cacheEntry) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= c.perShard {
		c.evictLocked(sh, e.stored)
	}
	sh.m[k] = e
}

// evictLocked removes one entry: the first past its stale time among the
// first few the map yields (in random order), else the first one.
func (c *cacheStore) evictLocked(sh *cacheShard, now int64) {
	var victim cacheKey
	n := 0
	for k, e := range sh.m {
		if n == 0 {
			victim = k
		}
		if now >= e.staleTo {
			victim = k
			break
		}
		if n++; n == 8 {
			break
		}
	}
	delete(sh.m, victim)
	c.evictions.Add(1)
}

// len counts the entries, stale ones included.
func (c *cacheStore) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// flush empties the cache.
func (c *cacheStore) flush() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

func (c *cacheStore) status() CacheStatus {
	return CacheStatus{
		Size: c.len(), Capacity: c.perShard * cacheShards,
		Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(),
		Merged: c.merged.Load(), Evictions: c.evictions.Load(),
	}
}
