package dns

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"gatewayd/lab"
)

// queryLoop asks one name again and again from a client namespace, one
// query at a time, and counts the queries that got no good answer.
type queryLoop struct {
	mu           sync.Mutex
	sent, failed int
	addrs        map[string]bool
	lastErr      error
	quit, done   chan struct{}
}

func startQueryLoop(t *testing.T, ns *lab.Namespace, server, name string) *queryLoop {
	t.Helper()
	conn, err := ns.DialContext(context.Background(), &net.Dialer{}, "udp", server+":53")
	must(t, err)
	l := &queryLoop{addrs: map[string]bool{}, quit: make(chan struct{}), done: make(chan struct{})}
	go l.run(&dns.Conn{Conn: conn}, name)
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *queryLoop) run(co *dns.Conn, name string) {
	defer close(l.done)
	defer co.Close()
	for {
		select {
		case <-l.quit:
			return
		default:
		}
		q := newQuery(name, dns.TypeA)
		err := l.ask(co, q)
		l.mu.Lock()
		l.sent++
		if err != nil {
			l.failed++
			l.lastErr = err
		}
		l.mu.Unlock()
	}
}

func (l *queryLoop) ask(co *dns.Conn, q *dns.Msg) error {
	co.SetDeadline(time.Now().Add(time.Second))
	if err := co.WriteMsg(q); err != nil {
		return err
	}
	for {
		r, err := co.ReadMsg()
		if err != nil {
			return err
		}
		if r.Id != q.Id {
			continue // a late answer to an earlier query
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return fmt.Errorf("answer %v", r)
		}
		l.mu.Lock()
		l.addrs[rdata(r.Answer[0])] = true
		l.mu.Unlock()
		return nil
	}
}

// sawAddr reports whether an answer carried addr yet.
func (l *queryLoop) sawAddr(addr string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.addrs[addr] {
		return fmt.Errorf("no answer with %s yet (saw %v)", addr, l.addrs)
	}
	return nil
}

// stop ends the loop and returns the counts.
func (l *queryLoop) stop() (sent, failed int) {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.failed
}
