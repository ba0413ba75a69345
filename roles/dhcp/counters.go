package dhcp

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// counters are the role's packet counters; safe for concurrent use.
type counters struct {
	in, out        [256]atomic.Uint64 // by message type
	malformed      atomic.Uint64
	ignored        atomic.Uint64
	exhausted      atomic.Uint64
	naks           atomic.Uint64
	declines       atomic.Uint64
	conflicts      atomic.Uint64
	optionsDropped atomic.Uint64
	panics         atomic.Uint64
	sendErrors     atomic.Uint64
	storeErrors    atomic.Uint64
}

// Counters are the role's packet counters as `gatewayd status` shows them.
type Counters struct {
	// In and Out count messages by type ("discover", "ack", ...).
	In  map[string]uint64 `json:"in"`
	Out map[string]uint64 `json:"out"`
	// Malformed packets were dropped: not DHCP, truncated, bad options, no client.
	Malformed uint64 `json:"malformed"`
	// Ignored packets needed no answer or were not ours to answer (another
	// server chosen, another address, no pool for the client's network).
	Ignored uint64 `json:"ignored"`
	// NoAddress counts DISCOVERs left unanswered because the pools are full.
	NoAddress uint64 `json:"no_address"`
	Naks      uint64 `json:"naks"`
	Declines  uint64 `json:"declines"`
	// Conflicts are addresses found in use by an ARP probe before an offer.
	Conflicts uint64 `json:"conflicts"`
	// OptionsDropped counts options left out of replies: no room in the
	// size the client takes (option 57, else 576 bytes).
	OptionsDropped uint64 `json:"options_dropped"`
	// Panics are handler failures caught and counted; the packet is dropped.
	Panics uint64 `json:"panics"`
	// SendErrors counts replies the kernel did not take: a full send
	// buffer (the rest of the batch is dropped, the client asks again) or
	// a destination it refuses.
	SendErrors  uint64 `json:"send_errors"`
	StoreErrors uint64 `json:"store_errors"`
}

func (c *counters) snapshot() Counters {
	out := Counters{
		In: map[string]uint64{}, Out: map[string]uint64{},
		Malformed: c.malformed.Load(), Ignored: c.ignored.Load(), NoAddress: c.exhausted.Load(),
		Naks: c.naks.Load(), Declines: c.declines.Load(), Conflicts: c.conflicts.Load(), OptionsDropped: c.optionsDropped.Load(), Panics: c.panics.Load(),
		SendErrors: c.sendErrors.Load(), StoreErrors: c.storeErrors.Load(),
	}
	for i := range c.in {
		if v := c.in[i].Load(); v > 0 {
			out.In[typeName(uint8(i))] = v
		}
		if v := c.out[i].Load(); v > 0 {
			out.Out[typeName(uint8(i))] = v
		}
	}
	return out
}

// typeName is "discover", "ack", ... for a message type.
func typeName(t uint8) string {
	return strings.ToLower(strings.TrimPrefix(dhcpv4.MessageType(t).String(), "DHCP"))
}

// failureLog lets a failure that repeats be logged at most once a second,
// with the count of what failed since the last line; safe for concurrent
// use (replies leave from the read loops and the lease log's writer).
type failureLog struct {
	last  atomic.Int64  // Unix nanoseconds of the last line
	since atomic.Uint64 // failed since the last line
}

// note adds n failures at now (Unix nanoseconds); ok says to log a line
// now, with total, the failures it reports.
func (l *failureLog) note(n int, now int64) (total uint64, ok bool) {
	l.since.Add(uint64(n))
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		return 0, false
	}
	return l.since.Swap(0), true
}
