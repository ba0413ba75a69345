package web

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"gatewayd/firewall"
)

// history keeps the last window of each alias's byte counters in memory, one
// ring per alias, for the page's traffic charts. Nothing is written to disk:
// a restart starts the charts afresh.
type history struct {
	every  time.Duration
	window time.Duration

	mu    sync.Mutex
	rings map[string]*ring
}

// sample is one reading of an alias's byte counters.
type sample struct {
	at      time.Time
	in, out uint64
}

// ring holds the newest samples of one alias, oldest overwritten first.
type ring struct {
	s    []sample
	next int // where the next sample goes
	n    int // samples held
}

func newHistory(every, window time.Duration) *history {
	return &history{every: every, window: window, rings: map[string]*ring{}}
}

// size is the samples a ring holds: the window and one more, so the first
// interval of the window has a rate too.
func (h *history) size() int { return int(h.window/h.every) + 1 }

// add records one reading of the counters. An alias missing from a reading
// keeps its ring until its newest sample leaves the window.
func (h *history) add(at time.Time, cs []firewall.AliasCounters) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cs {
		r := h.rings[c.Alias]
		if r == nil {
			r = &ring{s: make([]sample, h.size())}
			h.rings[c.Alias] = r
		}
		r.s[r.next] = sample{at: at, in: c.In.Bytes, out: c.Out.Bytes}
		r.next = (r.next + 1) % len(r.s)
		r.n = min(r.n+1, len(r.s))
	}
	for name, r := range h.rings {
		if newest := r.s[(r.next+len(r.s)-1)%len(r.s)]; at.Sub(newest.at) > h.window {
			delete(h.rings, name)
		}
	}
}

// series returns the alias's samples, oldest first.
func (h *history) series(alias string) []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rings[alias]
	if r == nil {
		return nil
	}
	out := make([]sample, 0, r.n)
	for i := range r.n {
		out = append(out, r.s[(r.next-r.n+i+len(r.s))%len(r.s)])
	}
	return out
}

// chart is an alias's traffic over the window as SVG path data, in a
// viewBox of chartW × chartH: one path for bytes in, one for bytes out.
type chart struct {
	In, Out string
	Peak    string // the highest rate drawn, "1.2 KiB/s"
	Points  int    // rates drawn
}

const chartW, chartH = 240, 48

// chartOf turns samples into rates between consecutive samples, drawn at the
// later sample's time on a window ending at now. A counter that went down
// (the table was replaced and its counters restarted) breaks the line.
func chartOf(ss []sample, now time.Time, window time.Duration) chart {
	type rate struct {
		at      time.Time
		in, out float64
		broken  bool
	}
	var rates []rate
	peak := 0.0
	broken := false
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		dt := b.at.Sub(a.at).Seconds()
		if dt <= 0 || b.in < a.in || b.out < a.out {
			broken = true
			continue
		}
		r := rate{at: b.at, in: float64(b.in-a.in) / dt, out: float64(b.out-a.out) / dt, broken: broken}
		broken = false
		rates = append(rates, r)
		peak = max(peak, r.in, r.out)
	}
	c := chart{Peak: rateText(peak), Points: len(rates)}
	if len(rates) == 0 {
		return c
	}
	start := now.Add(-window)
	x := func(t time.Time) float64 {
		return min(max(float64(chartW)*t.Sub(start).Seconds()/window.Seconds(), 0), chartW)
	}
	y := func(v float64) float64 {
		if peak == 0 {
			return chartH - 1
		}
		return chartH - 1 - (chartH-2)*v/peak
	}
	var in, out strings.Builder
	for i, r := range rates {
		cmd := "L"
		if i == 0 || r.broken {
			cmd = "M"
		}
		fmt.Fprintf(&in, "%s%.1f %.1f ", cmd, x(r.at), y(r.in))
		fmt.Fprintf(&out, "%s%.1f %.1f ", cmd, x(r.at), y(r.out))
	}
	c.In, c.Out = strings.TrimSpace(in.String()), strings.TrimSpace(out.String())
	return c
}

func rateText(bps float64) string { return bytesText(uint64(bps)) + "/s" }
