package dns

import "time"

// The retransmission discipline of unbound's infrastructure cache
// (util/rtt.c), kept per upstream: a smoothed round-trip time and its mean
// deviation (Jacobson/Karels, gains 1/8 and 1/4), a retransmission timeout
// of srtt + 4·rttvar held within [minRTO, maxRTO], doubled on every loss
// and back to the estimate on the next answer.
const (
	// minRTO is the floor: no upstream is asked again sooner, however
	// close it is (unbound's is 50 ms; ours leaves room for a busy box).
	minRTO = 100 * time.Millisecond
	// maxRTO caps the backoff. A forwarder's upstreams are near, and with
	// the whole query's deadline at a few seconds a longer wait would let
	// a query that began during an outage miss the upstream's return.
	maxRTO = time.Second
	// initialRTTVar makes an upstream never heard from start at an RTO of
	// 376 ms, as unbound does: long enough for a distant server, short
	// enough that a dead one costs a fraction of a second.
	initialRTTVar = 94 * time.Millisecond
)

// rttInfo is one upstream's round-trip estimate. Its methods are not safe
// for concurrent use: the upstream guards it.
type rttInfo struct {
	srtt, rttvar time.Duration
	rto          time.Duration // the current timeout, possibly backed off
}

func newRTTInfo() rttInfo {
	r := rttInfo{rttvar: initialRTTVar}
	r.rto = r.estimate()
	return r
}

// estimate is the timeout the measurements alone give, without backoff.
func (r *rttInfo) estimate() time.Duration {
	return min(max(r.srtt+4*r.rttvar, minRTO), maxRTO)
}

// sample takes one measured round trip and drops any backoff.
func (r *rttInfo) sample(rtt time.Duration) {
	delta := rtt - r.srtt
	r.srtt += delta / 8
	if delta < 0 {
		delta = -delta
	}
	r.rttvar += (delta - r.rttvar) / 4
	r.rto = r.estimate()
}

// lost doubles the timeout after a query sent with timeout orig went
// unanswered. It doubles orig, not the current value, so that many queries
// timing out together back off once, not once each; and it does nothing
// when an answer has lowered the timeout since orig was handed out.
func (r *rttInfo) lost(orig time.Duration) {
	if r.rto < orig {
		return
	}
	r.rto = min(max(r.rto, 2*orig), maxRTO)
}
