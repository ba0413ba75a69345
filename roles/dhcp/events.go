package dhcp

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// The role's decision log, for an admin asking "why does my phone get no
// address?", as dnsmasq's log-dhcp and ISC dhcpd's syslog lines answer it.
// At info, one line per decision that changes a lease: an ACK (once its
// lease is on disk), a NAK and its reason, a DECLINE, a RELEASE, an address
// a probe found in use, pools exhausted. At debug, one line per request
// received and, for those that get no reply, why. Keys are stable: mac,
// addr, hostname, relay, client_id, reason, type. Each kind of line is
// rate-limited, so a flood of requests cannot fill the disk: what is
// dropped is counted in the next line of its kind (suppressed=N).

// Kinds of log line, each with its own budget.
const (
	evAck       = "ack"
	evNak       = "nak"
	evDecline   = "decline"
	evRelease   = "release"
	evConflict  = "conflict"
	evExhausted = "exhausted"
	evRequest   = "request"  // debug
	evNoReply   = "no-reply" // debug
)

// limits per kind: a burst, then a steady rate per second.
var eventLimits = map[string]struct{ burst, rate float64 }{
	evExhausted: {1, 0.1}, // one line each 10 s: every DISCOVER says the same
	evRequest:   {200, 50},
	evNoReply:   {200, 50},
}

var defaultLimit = struct{ burst, rate float64 }{100, 20}

// logLimit is a token bucket per kind of line; safe for concurrent use.
type logLimit struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens  float64
	last    time.Time
	dropped int
}

func newLogLimit() *logLimit {
	return &logLimit{now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes a token for a line of kind; it returns false when the line
// is to be dropped, else how many lines of the kind were dropped since the
// last one let through.
func (l *logLimit) allow(kind string) (ok bool, dropped int) {
	lim, found := eventLimits[kind]
	if !found {
		lim = defaultLimit
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[kind]
	if b == nil {
		b = &bucket{tokens: lim.burst, last: now}
		l.buckets[kind] = b
	}
	b.tokens = min(lim.burst, b.tokens+now.Sub(b.last).Seconds()*lim.rate)
	b.last = now
	if b.tokens < 1 {
		b.dropped++
		return false, 0
	}
	b.tokens--
	dropped, b.dropped = b.dropped, 0
	return true, dropped
}

// event logs one line of kind at level, within its budget.
func (h *handler) event(level slog.Level, kind, msg string, attrs ...any) {
	if !h.log.Enabled(context.Background(), level) {
		return
	}
	if h.logs != nil {
		ok, dropped := h.logs.allow(kind)
		if !ok {
			return
		}
		if dropped > 0 {
			attrs = append(attrs, "suppressed", dropped)
		}
	}
	h.log.Log(context.Background(), level, msg, attrs...)
}

// request is what a log line says about the request an outcome answers.
type request struct {
	mt       uint8
	mac      string
	clientID string
	relay    netip.Addr // giaddr; invalid when on the wire
	asked    netip.Addr // the address the lease line is about
	hostname string
}

// attrs are the request's keys for a log line.
func (r *request) attrs(more ...any) []any {
	out := []any{"mac", macString(r.mac)}
	if r.asked.IsValid() {
		out = append(out, "addr", r.asked)
	}
	if r.hostname != "" {
		out = append(out, "hostname", r.hostname)
	}
	if r.clientID != "" {
		out = append(out, "client_id", colonHex(r.clientID))
	}
	if r.relay.IsValid() {
		out = append(out, "relay", r.relay)
	}
	return append(out, more...)
}

// requestOf summarises a request for the log.
func requestOf(req *packet, c client) request {
	r := request{mt: req.messageType(), mac: c.mac, clientID: c.clientID, hostname: c.hostname}
	if req.giaddr != 0 {
		r.relay = u32Addr(req.giaddr)
	}
	return r
}

// logReceived is the debug line of a request and, when it got no reply,
// why; called once its outcome is known.
func (h *handler) logReceived(out *outcome) {
	if !h.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	r := &out.req
	typ := "malformed"
	if r.mt != 0 {
		typ = typeName(r.mt)
	}
	h.event(slog.LevelDebug, evRequest, "request received", append([]any{"type", typ}, r.attrs()...)...)
	if out.mt == 0 && len(out.commit) == 0 && len(out.names) == 0 && !out.probe && out.why != "" {
		h.event(slog.LevelDebug, evNoReply, "no reply", append([]any{"type", typ, "reason", out.why}, r.attrs()...)...)
	}
}

// logAck is the info line of an ACK whose lease is on disk.
func (h *handler) logAck(out *outcome) {
	if out.ack == nil || !h.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	h.event(slog.LevelInfo, evAck, "DHCPACK: lease granted", out.ack.attrs("lease", out.lease)...)
}
