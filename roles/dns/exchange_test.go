package dns

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// stubTransport records an exchange's attempts and sends nothing; send
// fails with err when it is set.
type stubTransport struct {
	sent []*attempt
	err  error
}

func (t *stubTransport) send(a *attempt, wire []byte) error {
	if t.err != nil {
		return t.err
	}
	a.id = uint16(len(t.sent))
	t.sent = append(t.sent, a)
	return nil
}
func (t *stubTransport) tcp(*attempt, *dns.Msg) {}
func (t *stubTransport) release(*attempt)       {}

// stubExchange is an exchange of one question to one upstream over t.
func stubExchange(t *testing.T, tr *stubTransport) (*exchange, *dns.Msg) {
	t.Helper()
	u := newUpstream(netip.MustParseAddrPort("192.0.2.1:53"), newFakeNet(), nil, discard)
	t.Cleanup(u.close)
	p := &pool{upstreams: []*upstream{u}, stats: &forwardStats{}}
	q := newQuery("www.example.com.", dns.TypeA, withEDNS(udpSize, false))
	x, err := p.newExchange(q, tr, time.Now().Add(time.Hour))
	must(t, err)
	x.begin()
	return x, q
}

// TestExchangeFormerrOnLastAttempt: a FORMERR (or NOTIMP) that comes when
// no attempt is left for the fallback without EDNS still ends the exchange
// with that answer (the client's SERVFAIL), not as if nobody answered.
func TestExchangeFormerrOnLastAttempt(t *testing.T) {
	for _, rcode := range []int{dns.RcodeFormatError, dns.RcodeNotImplemented} {
		tr := &stubTransport{}
		x, q := stubExchange(t, tr)
		for len(x.tries) < maxAttempts {
			x.timer(time.Now())
		}
		x.answered(x.tries[0], new(dns.Msg).SetRcode(q, rcode), time.Now())
		if !x.finished() {
			t.Fatalf("%s on the last attempt: the exchange goes on", dns.RcodeToString[rcode])
		}
		r, err := x.end(time.Now())
		if err != nil || r == nil || r.Rcode != rcode {
			t.Fatalf("%s on the last attempt: ended with %v, %v", dns.RcodeToString[rcode], r, err)
		}
		if n := x.p.stats.ednsFallbacks.Load(); n != 0 {
			t.Fatalf("%d EDNS fallbacks counted without one sent", n)
		}
	}
}

// TestExchangeEDNSFallbackCounted: the fallback without EDNS is counted
// once it is sent, as a fallback and not as a retransmission.
func TestExchangeEDNSFallbackCounted(t *testing.T) {
	tr := &stubTransport{}
	x, q := stubExchange(t, tr)
	x.answered(x.tries[0], new(dns.Msg).SetRcode(q, dns.RcodeFormatError), time.Now())
	st := x.p.stats
	if len(tr.sent) != 2 || !tr.sent[1].plain {
		t.Fatalf("after FORMERR %d attempts sent, want the first and one without EDNS", len(tr.sent))
	}
	if st.ednsFallbacks.Load() != 1 || st.retransmits.Load() != 0 || st.hedges.Load() != 0 {
		t.Fatalf("fallbacks %d, retransmits %d, hedges %d: want 1, 0, 0",
			st.ednsFallbacks.Load(), st.retransmits.Load(), st.hedges.Load())
	}

	// A fallback that cannot be sent is not counted.
	tr = &stubTransport{}
	x, q = stubExchange(t, tr)
	tr.err = errors.New("no socket")
	x.answered(x.tries[0], new(dns.Msg).SetRcode(q, dns.RcodeFormatError), time.Now())
	if n := x.p.stats.ednsFallbacks.Load(); n != 0 {
		t.Fatalf("%d EDNS fallbacks counted, none sent", n)
	}
	if !x.finished() {
		t.Fatal("the only upstream failed the query, and the exchange goes on")
	}
}
