package dhcp

import (
	"sync/atomic"
	"time"
)

// The lease log's distributions: how long each batch's fdatasync took
// (seconds), and how many records each batch carried.
var (
	fsyncBounds = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1}
	batchBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
)

// Histogram is a distribution of observations: Counts[i] of them were at
// most Bounds[i] and above Bounds[i-1]; the last of Counts, one more than
// Bounds, were above every bound. The counts are per bucket, not
// cumulative. Count is their total, Sum the sum of the observations.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

// histogram counts integer observations (nanoseconds, records) in fixed
// buckets. One goroutine adds (the log's writer); status reads meanwhile,
// hence the atomics.
type histogram struct {
	bounds []float64 // in the Histogram's unit
	limits []uint64  // the same, in observation units
	unit   float64   // an observation unit in the Histogram's unit
	counts []atomic.Uint64
	sum    atomic.Uint64
}

func newHistogram(bounds []float64, unit float64) *histogram {
	h := &histogram{bounds: bounds, unit: unit, counts: make([]atomic.Uint64, len(bounds)+1)}
	for _, b := range bounds {
		h.limits = append(h.limits, uint64(b/unit+0.5))
	}
	return h
}

func (h *histogram) observe(v uint64) {
	i := 0
	for i < len(h.limits) && v > h.limits[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(v)
}

func (h *histogram) observeDuration(d time.Duration) { h.observe(uint64(max(d, 0))) }

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: h.bounds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
		out.Count += out.Counts[i]
	}
	out.Sum = float64(h.sum.Load()) * h.unit
	return out
}
