package dns

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/miekg/dns"
)

// connTransport sends each attempt on a socket of its own, dialled through
// the upstream's Net from a random port, and reads its answer on a
// goroutine of its own. It carries the queries forwarded off the UDP read
// loops (TCP clients, merged retries, serve-stale refreshes, CNAME
// targets outside the zone), over any Net: the tests' in-memory one too.
type connTransport struct {
	ctx     context.Context // its deadline is the whole query's
	reports chan report
}

// report is what an attempt's reader, or a TCP retry, sends the driver.
type report struct {
	a   *attempt
	r   *dns.Msg
	err error
	at  time.Time
	tcp bool
}

func (t *connTransport) send(a *attempt, wire []byte) error {
	conn, id, err := a.u.sendUDP(t.ctx, wire)
	if err != nil {
		return err
	}
	a.id, a.io = id, conn
	if dl, ok := t.ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	q, unwanted := a.x.q.Question[0], &a.x.p.stats.unwanted
	go func() {
		r, err := readAnswer(conn, id, q, unwanted)
		t.reports <- report{a: a, r: r, err: err, at: time.Now()}
	}()
	return nil
}

func (t *connTransport) tcp(a *attempt, q *dns.Msg) {
	go func() {
		r, err := a.u.exchangeTCP(t.ctx, q)
		t.reports <- report{a: a, r: r, err: err, tcp: true}
	}()
}

// release closes a's socket: its reader ends and reports into the
// buffered channel.
func (t *connTransport) release(a *attempt) {
	if c, ok := a.io.(net.Conn); ok {
		c.Close()
	}
}

// exchange forwards q, waiting on the calling goroutine until it is
// answered or ctx ends (the whole query's deadline). A receive on kick (a
// client asking again) asks again at once.
func (p *pool) exchange(ctx context.Context, q *dns.Msg, kick <-chan struct{}) (*dns.Msg, error) {
	// Every attempt's reader reports once, and so does every TCP retry
	// (at most one per attempt): none of them ever blocks.
	t := &connTransport{ctx: ctx, reports: make(chan report, 2*maxAttempts)}
	dl, _ := ctx.Deadline()
	x, err := p.newExchange(q, t, dl)
	if err != nil {
		return nil, err
	}
	x.begin()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var armed time.Time
	for !x.finished() {
		var fire <-chan time.Time
		if x.wake != armed {
			armed = x.wake
			if armed.IsZero() {
				timer.Stop()
			} else {
				timer.Reset(time.Until(armed))
			}
		}
		if !armed.IsZero() {
			fire = timer.C
		}
		select {
		case rp := <-t.reports:
			switch {
			case rp.tcp:
				x.answeredTCP(rp.a, rp.r, rp.err)
			case rp.err == nil:
				x.answered(rp.a, rp.r, rp.at)
			case ctx.Err() == nil && !errors.Is(rp.err, os.ErrDeadlineExceeded):
				// (A socket's deadline is the query's: ctx ends with it.)
				x.failedAttempt(rp.a, rp.err)
			}
		case <-fire:
			armed = time.Time{}
			x.timer(time.Now())
		case <-kick:
			x.kick()
		case <-ctx.Done():
			r, err := x.end(time.Now())
			if err != nil {
				err = errors.Join(ctx.Err(), err)
			}
			return r, err
		}
	}
	return x.end(time.Now())
}
