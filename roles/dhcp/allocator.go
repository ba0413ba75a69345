package dhcp

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// allocator holds every binding, held offer and static lease, and finds
// addresses. It is not safe for concurrent use: the handler's lock guards it.
//
// Each pool keeps two bitmaps over its range: used (bound, declined, offered
// or reserved for a static lease) and known (some binding, maybe expired,
// names the address). A fresh address is the first neither used nor known
// after the pool's cursor, so an expired client's address stays free for its
// return as long as possible; then the least recently used (lru.go); then
// the first not used; when even that fails the expired bindings are swept
// and the search runs again.
type allocator struct {
	pools    []*pool
	byAddr   map[uint32]*binding
	byClient map[string]*binding
	offers   map[uint32]*offer
	offerOf  map[string]uint32
	freeSeq  uint64 // numbers the entries of the pools' free queues
	// statics by client key ("h"+mac and/or "i"+client id) and by address.
	statics    map[string]*staticLease
	staticAddr map[uint32]*staticLease
	// byName is the binding holding each host name (see nameHolder).
	byName map[string]*binding
	// tombs are the deletions whose record is not written yet (undo.go).
	tombs map[uint32]*binding
	// nameq orders the name holders by expiry, to withdraw each name
	// when its lease ends (expiry.go); onEarlier is called when its
	// earliest expiry moves earlier.
	nameq     nameQueue
	onEarlier func()
	// loading is set while load installs bindings from the log.
	loading bool
	// occ counts the live bindings (occupancy.go); every change of
	// byAddr goes through setAddr and delAddr to keep it.
	occ occupancy
	// made collects, while track is set, the bindings put by the request
	// being handled, so a request that panics halfway is rolled back
	// (handleBytes): its records are never queued.
	made  []*binding
	track bool
}

// pool is one configured range and its bitmaps.
type pool struct {
	cfg        *Pool
	start, end uint32
	used       []uint64
	known      []uint64
	cursor     uint32 // offset where the next search starts
	opts       *poolOptions
	// free queues the addresses whose binding has ended, oldest first.
	free     []freeEntry
	freeHead int
}

// offer is an address held for a client between OFFER and REQUEST.
type offer struct {
	key     string
	until   int64 // Unix nanoseconds
	probing bool  // an ARP probe runs; the OFFER waits for it
}

// staticLease is a configured static lease; mac and clientID are raw bytes.
type staticLease struct {
	addr          uint32
	hostname      string
	mac, clientID string
}

func newStaticLease(s Static) *staticLease {
	st := &staticLease{addr: addrU32(s.Address), hostname: s.Hostname, mac: string(s.MAC)}
	if s.ClientID != "" {
		st.clientID = staticClientID(s.ClientID)
	}
	return st
}

// owns reports whether b is the static lease's client's own lease.
func (st *staticLease) owns(b *binding) bool {
	return b.state == bindActive && (st.mac != "" && b.mac == st.mac || st.clientID != "" && b.clientID == st.clientID)
}

// noClient is a key no client has (real keys start with "h" or "i").
const noClient = "\x00"

// newAllocator makes an allocator for about leases bindings, names of
// them with a host name: maps made to their size from the start hold them
// in a third less memory than maps grown to it.
func newAllocator(leases, names int) *allocator {
	return &allocator{
		byAddr: make(map[uint32]*binding, leases), byClient: make(map[string]*binding, leases),
		offers: map[uint32]*offer{}, offerOf: map[string]uint32{},
		statics: map[string]*staticLease{}, staticAddr: map[uint32]*staticLease{},
		byName: make(map[string]*binding, names), tombs: map[uint32]*binding{},
		occ: occupancy{ending: map[endKey]int32{}, low: math.MaxInt64},
	}
}

func newPool(c *Pool) *pool {
	p := &pool{cfg: c, start: addrU32(c.Range.Start), end: addrU32(c.Range.End)}
	words := (c.Range.Size() + 63) / 64
	p.used, p.known = make([]uint64, words), make([]uint64, words)
	return p
}

func (p *pool) size() int                { return int(p.end-p.start) + 1 }
func (p *pool) contains(a uint32) bool   { return a >= p.start && a <= p.end }
func (p *pool) onSubnet(a uint32) bool   { return p.cfg.Subnet.Contains(u32Addr(a)) }
func (p *pool) inUse() int               { return popcount(p.used) }
func setBit(bm []uint64, i uint32)       { bm[i/64] |= 1 << (i % 64) }
func clearBit(bm []uint64, i uint32)     { bm[i/64] &^= 1 << (i % 64) }
func testBit(bm []uint64, i uint32) bool { return bm[i/64]&(1<<(i%64)) != 0 }

func popcount(bm []uint64) int {
	n := 0
	for _, w := range bm {
		n += bits.OnesCount64(w)
	}
	return n
}

// configure installs new pools and static leases, keeping every binding and
// offer. Bindings outside the new pools stay until they expire.
func (a *allocator) configure(pools []*pool, statics []Static) {
	a.pools = pools
	a.recount()
	clear(a.statics)
	clear(a.staticAddr)
	for _, s := range statics {
		st := newStaticLease(s)
		if st.mac != "" {
			a.statics[clientKey("", st.mac)] = st
		}
		if st.clientID != "" {
			a.statics[clientKey(st.clientID, "")] = st
		}
		a.staticAddr[st.addr] = st
	}
	for _, p := range pools {
		for addr := range a.staticAddr {
			if p.contains(addr) {
				setBit(p.used, addr-p.start)
			}
		}
	}
	for addr, b := range a.byAddr {
		a.mark(addr, b)
	}
	for addr := range a.offers {
		if p := a.poolOf(addr); p != nil {
			setBit(p.used, addr-p.start)
		}
	}
	a.queueFree()
}

// mark sets the bitmaps for a binding that was just stored.
func (a *allocator) mark(addr uint32, b *binding) {
	p := a.poolOf(addr)
	if p == nil {
		return
	}
	setBit(p.known, addr-p.start)
	if b.state != bindExpired {
		setBit(p.used, addr-p.start)
	}
}

// poolOf returns the pool whose range holds addr.
func (a *allocator) poolOf(addr uint32) *pool {
	for _, p := range a.pools {
		if p.contains(addr) {
			return p
		}
	}
	return nil
}

// static returns the client's static lease, by client id first.
func (a *allocator) static(clientID, mac string) *staticLease {
	if clientID != "" {
		if st := a.statics[clientKey(clientID, "")]; st != nil {
			return st
		}
	}
	return a.statics[clientKey("", mac)]
}

// available reports whether the client with key may have addr at this time:
// its own live lease (even of an address a static lease added since
// reserves for another client: it keeps it until it ends), else no other
// client's static lease, live offer, live binding or quarantine.
func (a *allocator) available(addr uint32, key string, now int64, nowNs int64) bool {
	if b := a.byAddr[addr]; b != nil && b.live(now) {
		return b.key() == key
	}
	if st := a.staticAddr[addr]; st != nil && a.statics[key] != st {
		return false
	}
	if o := a.offers[addr]; o != nil && o.until > nowNs && o.key != key {
		return false
	}
	return true
}

// holder returns the live binding that keeps st's address from its client:
// another client's lease (made before the static lease was configured) or
// a quarantine; nil when the address is free for it.
func (a *allocator) holder(st *staticLease, now int64) *binding {
	b := a.byAddr[st.addr]
	if b == nil || !b.live(now) || st.owns(b) {
		return nil
	}
	return b
}

// inRange returns the pool among cands whose range holds addr.
func inRange(cands []*pool, addr uint32) *pool {
	for _, p := range cands {
		if p.contains(addr) {
			return p
		}
	}
	return nil
}

// onSubnet returns a pool among cands whose subnet holds addr.
func onSubnet(cands []*pool, addr uint32) *pool {
	for _, p := range cands {
		if p.onSubnet(addr) {
			return p
		}
	}
	return nil
}

// nextFree finds a fresh address in cands, sweeping expired bindings and
// offers once if the pools look full. It returns ok false when they are.
func (a *allocator) nextFree(cands []*pool, now, nowNs int64) (uint32, *pool, bool, []nameChange) {
	if addr, p, ok := a.search(cands, now, nowNs); ok {
		return addr, p, true, nil
	}
	names := a.sweep(now, nowNs)
	addr, p, ok := a.search(cands, now, nowNs)
	return addr, p, ok, names
}

// search tries, in every pool of cands, an address never leased, then the
// least recently used one, then any that is free.
func (a *allocator) search(cands []*pool, now, nowNs int64) (uint32, *pool, bool) {
	for _, p := range cands {
		if addr, ok := a.scan(p, true, now, nowNs); ok {
			return addr, p, true
		}
	}
	for _, p := range cands {
		if addr, ok := a.popFree(p, now, nowNs); ok {
			return addr, p, true
		}
	}
	for _, p := range cands {
		if addr, ok := a.scan(p, false, now, nowNs); ok {
			return addr, p, true
		}
	}
	return 0, nil, false
}

// scan walks p's bitmap from its cursor to the end, then from the start to
// the cursor, for a clear bit (in used, and in known too when unseen), and
// checks the candidate.
func (a *allocator) scan(p *pool, unseen bool, now, nowNs int64) (uint32, bool) {
	n := uint32(p.size())
	if off, ok := a.scanSpan(p, p.cursor, n, unseen, now, nowNs); ok {
		return off, true
	}
	return a.scanSpan(p, 0, p.cursor, unseen, now, nowNs)
}

func (a *allocator) scanSpan(p *pool, from, to uint32, unseen bool, now, nowNs int64) (uint32, bool) {
	for off := from; off < to; {
		w := p.used[off/64]
		if unseen {
			w |= p.known[off/64]
		}
		w = ^w >> (off % 64) // free bits from off upward within the word
		if w == 0 {
			off += 64 - off%64
			continue
		}
		off += uint32(bits.TrailingZeros64(w))
		if off >= to {
			break
		}
		addr := p.start + off
		if a.available(addr, noClient, now, nowNs) {
			p.cursor = (off + 1) % uint32(p.size())
			return addr, true
		}
		// Something holds it that the bitmap missed: mark it and go on.
		setBit(p.used, off)
		off++
	}
	return 0, false
}

// hold keeps addr for the client until untilNs, replacing its earlier offer.
func (a *allocator) hold(addr uint32, key string, untilNs int64) {
	a.dropOffer(key)
	if old := a.offers[addr]; old != nil {
		delete(a.offerOf, old.key)
	}
	a.offers[addr] = &offer{key: key, until: untilNs}
	a.offerOf[key] = addr
	if p := a.poolOf(addr); p != nil {
		setBit(p.used, addr-p.start)
	}
}

// dropOffer forgets the client's held offer.
func (a *allocator) dropOffer(key string) {
	addr, ok := a.offerOf[key]
	if !ok {
		return
	}
	delete(a.offerOf, key)
	delete(a.offers, addr)
	a.refresh(addr)
}

// probing reports whether an ARP probe of addr runs for its offer.
func (a *allocator) probing(addr uint32) bool {
	o := a.offers[addr]
	return o != nil && o.probing
}

// offered returns the client's live held offer.
func (a *allocator) offered(key string, nowNs int64) (uint32, bool) {
	addr, ok := a.offerOf[key]
	if !ok || a.offers[addr].until <= nowNs {
		return 0, false
	}
	return addr, true
}

// refresh recomputes addr's used bit from what holds it now.
func (a *allocator) refresh(addr uint32) {
	p := a.poolOf(addr)
	if p == nil {
		return
	}
	_, offered := a.offers[addr]
	b := a.byAddr[addr]
	_, static := a.staticAddr[addr]
	if offered || static || (b != nil && b.state != bindExpired) {
		setBit(p.used, addr-p.start)
	} else {
		if b != nil && testBit(p.used, addr-p.start) {
			a.pushFree(p, b) // it has just ended
		}
		clearBit(p.used, addr-p.start)
	}
	if b != nil {
		setBit(p.known, addr-p.start)
	} else {
		clearBit(p.known, addr-p.start)
	}
}

// put stores b as the binding of its address, replacing whatever binding the
// address had (an expired one of another client is forgotten). It returns the
// client's binding at another address, now expired, for the log; nil if none.
// What b replaces is remembered on b until its record is written (undo.go);
// nothing in memory is changed in place.
func (a *allocator) put(b *binding) (moved *binding) {
	k := b.key()
	old := a.byAddr[b.addr]
	if !a.loading {
		u := &undo{was: old, setsClient: k != ""}
		b.undo = u
		if old == nil {
			u.was = a.tombs[b.addr]
		}
		if k != "" {
			u.wasClient = a.byClient[k]
		}
	}
	if old != nil {
		if ok := old.key(); ok != "" && a.byClient[ok] == old {
			delete(a.byClient, ok)
		}
		a.dropName(old)
	}
	if b.state == bindActive && b.hostname != "" {
		a.byName[b.hostname] = b
		a.queueName(b)
	}
	if k != "" {
		if prev := a.byClient[k]; prev != nil && prev.addr != b.addr {
			if prev.state == bindActive {
				m := *prev
				m.state = bindExpired
				if m.undo = nil; !a.loading {
					m.undo = &undo{was: prev}
				}
				a.dropName(prev)
				a.setAddr(prev.addr, &m)
				moved = &m
			}
			a.refresh(prev.addr)
		}
		a.byClient[k] = b
	}
	a.setAddr(b.addr, b)
	a.refresh(b.addr)
	if a.track {
		a.made = append(a.made, b)
		if moved != nil {
			a.made = append(a.made, moved)
		}
	}
	return moved
}

// forget removes the binding of addr entirely.
func (a *allocator) forget(addr uint32) {
	b := a.byAddr[addr]
	if b == nil {
		return
	}
	if k := b.key(); k != "" && a.byClient[k] == b {
		delete(a.byClient, k)
	}
	a.dropName(b)
	a.delAddr(addr)
	a.refresh(addr)
}

// nameHolder returns the live lease that holds the host name; nil if none.
func (a *allocator) nameHolder(name string, now int64) *binding {
	b := a.byName[name]
	if b == nil || b.state != bindActive || !b.live(now) || b.hostname != name || a.byAddr[b.addr] != b {
		return nil
	}
	return b
}

// dropName forgets that b holds its host name.
func (a *allocator) dropName(b *binding) {
	if b.hostname != "" && a.byName[b.hostname] == b {
		delete(a.byName, b.hostname)
	}
}

// holdsName reports whether b is the lease its host name is published for.
func (a *allocator) holdsName(b *binding, now int64) bool {
	return b.hostname != "" && a.nameHolder(b.hostname, now) == b
}

// settleNames makes one live lease the holder of each host name after
// loading: a static one, else the one at the lowest address (a log written
// before the rule may hold a name twice).
func (a *allocator) settleNames(now int64) {
	clear(a.byName)
	for _, b := range a.bindings() {
		if b.state != bindActive || !b.live(now) || b.hostname == "" {
			continue
		}
		if hb := a.byName[b.hostname]; hb == nil || b.static && !hb.static {
			a.byName[b.hostname] = b
		}
	}
	a.nameq = a.nameq[:0]
	for _, b := range a.byName {
		a.queueName(b)
	}
}

// sweep ends what has run out: offers, leases (their names are withdrawn)
// and quarantines. Expired bindings inside a pool are remembered so the
// client gets the address again; those outside every pool are forgotten.
// What ends is ended in the order it ran out (then by address), so the
// free queue (lru.go) and the name changes do not follow map order.
func (a *allocator) sweep(now, nowNs int64) []nameChange {
	var offers []uint32
	for addr, o := range a.offers {
		if o.until <= nowNs {
			offers = append(offers, addr)
		}
	}
	slices.Sort(offers)
	for _, addr := range offers {
		o := a.offers[addr]
		delete(a.offers, addr)
		if a.offerOf[o.key] == addr {
			delete(a.offerOf, o.key)
		}
		a.refresh(addr)
	}
	var ended []*binding
	for addr, b := range a.byAddr {
		if b.state == bindExpired && a.poolOf(addr) == nil {
			a.forget(addr)
		} else if b.state != bindExpired && b.expires <= now {
			ended = append(ended, b)
		}
	}
	slices.SortFunc(ended, func(x, y *binding) int {
		return cmp.Or(cmp.Compare(x.expires, y.expires), cmp.Compare(x.addr, y.addr))
	})
	var names []nameChange
	for _, b := range ended {
		addr := b.addr
		if b.state == bindActive && a.holdsName(b, b.expires-1) {
			names = append(names, nameChange{host: b.hostname, addr: u32Addr(addr)})
		}
		a.dropName(b)
		if b.state == bindDeclined || a.poolOf(addr) == nil {
			a.forget(addr)
			continue
		}
		a.count(b, -1)
		b.state = bindExpired // in place: no decision, no record (undo.go)
		a.refresh(addr)
	}
	a.swept(now)
	return names
}

// bindings returns every binding, in address order.
func (a *allocator) bindings() []*binding {
	out := make([]*binding, 0, len(a.byAddr))
	for _, b := range a.byAddr {
		out = append(out, b)
	}
	slices.SortFunc(out, func(x, y *binding) int {
		switch {
		case x.addr < y.addr:
			return -1
		case x.addr > y.addr:
			return 1
		}
		return 0
	})
	return out
}

// load installs a binding read from the log, before configure: it is on
// disk, so nothing is kept to undo it. Only the newest binding of a client
// keeps the client's key.
func (a *allocator) load(b *binding) {
	if k := b.key(); k != "" {
		if prev := a.byClient[k]; prev != nil && prev.addr != b.addr && prev.expires > b.expires {
			a.setAddr(b.addr, b)
			a.mark(b.addr, b)
			return
		}
	}
	a.loading = true
	a.put(b)
	a.loading = false
}
