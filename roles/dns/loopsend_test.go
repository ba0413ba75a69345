package dns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// unixNet dials every "udp" socket as a datagram socket to the Unix socket
// addr: a real descriptor for a loop's pool without any network.
type unixNet struct{ addr *net.UnixAddr }

func (n unixNet) DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	return net.DialUnix("unixgram", nil, n.addr)
}

// sendLoop is a loop with an epoll set of its own and one upstream, which
// unixNet dials to a fresh listener (returned).
func sendLoop(t *testing.T) (*loop, *upstream, *net.UnixConn) {
	t.Helper()
	addr := &net.UnixAddr{Name: "@gatewayd-dns-" + t.Name() + strconv.Itoa(os.Getpid()), Net: "unixgram"}
	ln, err := net.ListenUnixgram("unixgram", addr)
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	s := New(Options{Logger: discard})
	t.Cleanup(func() { s.Close() })
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	must(t, err)
	t.Cleanup(func() { unix.Close(ep) })
	u := newUpstream(netip.MustParseAddrPort("192.0.2.1:53"), unixNet{addr}, nil, discard)
	t.Cleanup(u.close)
	l := &loop{s: s, ep: ep, socks: map[int32]*upSock{}, pools: map[*upstream]*portPool{}, up: new(upBatch)}
	return l, u, ln
}

// pooled puts a socket pair's first end into every slot of u's pool, as a
// socket that carried attempts already, and returns the other end.
func pooled(t *testing.T, l *loop, u *upstream) (*upSock, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	t.Cleanup(func() { unix.Close(fds[1]) })
	p := new(portPool)
	s := &upSock{fd: fds[0], pool: p, opened: time.Now(), uses: 1, attempts: map[uint16]*attempt{}}
	for i := range p.slots {
		p.slots[i] = s
	}
	l.pools[u] = p
	l.socks[int32(s.fd)] = s
	return s, fds[1]
}

var testWire = make([]byte, 40)

// TestLoopSendFullBuffer: a send the kernel has no room for is a loss for
// the retransmission timer, not a failure of the upstream.
func TestLoopSendFullBuffer(t *testing.T) {
	l, u, _ := sendLoop(t)
	s, _ := pooled(t, l, u)
	defer l.closeSock(s)
	for unix.Send(s.fd, testWire, unix.MSG_DONTWAIT) == nil {
	}
	a := &attempt{u: u}
	if err := l.send(a, testWire); err != nil {
		t.Fatalf("a send into a full buffer failed the attempt: %v", err)
	}
	if a.io != s || s.attempts[a.id] != a || s.retired {
		t.Fatalf("the attempt is not on its socket (retired %v)", s.retired)
	}
	if !u.healthy() || u.failures.Load() != 0 {
		t.Fatal("a full send buffer counted against the upstream")
	}
}

// TestLoopSendPendingRefusal: a pooled socket reports a refusal one of its
// earlier attempts drew; the attempt goes out once more on a fresh socket.
func TestLoopSendPendingRefusal(t *testing.T) {
	l, u, ln := sendLoop(t)
	s, peer := pooled(t, l, u)
	unix.Close(peer) // its next send is refused
	a := &attempt{u: u}
	if err := l.send(a, testWire); err != nil {
		t.Fatalf("an earlier attempt's refusal failed this one: %v", err)
	}
	if !s.retired || l.socks[int32(s.fd)] == s {
		t.Fatal("the refused socket is still in use")
	}
	fresh, ok := a.io.(*upSock)
	if !ok || fresh == s || l.pools[u].slots[fresh.slot] != fresh {
		t.Fatal("the attempt is not on a fresh socket of the pool")
	}
	defer func() { l.retire(fresh); l.release(a) }()
	ln.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := ln.Read(make([]byte, 512)); err != nil {
		t.Fatalf("the fresh socket sent nothing: %v", err)
	}
	if !u.healthy() || u.failures.Load() != 0 {
		t.Fatal("an earlier attempt's refusal counted against the upstream")
	}
}

// TestLoopRecvErrorRetires: a socket whose read fails is retired, and
// closed once no attempt is left on it.
func TestLoopRecvErrorRetires(t *testing.T) {
	l, u, _ := sendLoop(t)
	var pipe [2]int
	must(t, unix.Pipe2(pipe[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
	defer unix.Close(pipe[1])
	// A pipe: recvmmsg fails on it (ENOTSOCK), as on a refused socket.
	p := new(portPool)
	s := &upSock{fd: pipe[0], pool: p, opened: time.Now(), attempts: map[uint16]*attempt{}}
	p.slots[0] = s
	l.pools[u] = p
	l.socks[int32(s.fd)] = s
	l.readUpstream(s, time.Now())
	if !s.retired || p.slots[0] != nil || l.socks[int32(s.fd)] != nil {
		t.Fatalf("after a read error: retired %v, in its pool %v, open %v", s.retired, p.slots[0] == s, l.socks[int32(s.fd)] == s)
	}
}

// TestLoopUnwantedReply: a datagram from the upstream that answers no
// attempt its socket carried is counted and retires the socket, which
// keeps its attempts; a late answer to an attempt it carried is neither.
func TestLoopUnwantedReply(t *testing.T) {
	q := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	reply := func(id uint16, name string) []byte {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Response, m.Id = true, id
		wire, err := m.Pack()
		must(t, err)
		return wire
	}
	for _, tc := range []struct {
		name    string
		wire    func(live, over uint16) []byte
		retires bool
	}{
		{"late", func(_, over uint16) []byte { return reply(over, "example.com.") }, false},
		{"unknown id", func(live, over uint16) []byte {
			id := live + 1
			for id == over || id == 0 { // (the test pool's socket counts a use with ID 0)
				id++
			}
			return reply(id, "example.com.")
		}, true},
		{"other question", func(live, _ uint16) []byte { return reply(live, "example.net.") }, true},
		{"short", func(uint16, uint16) []byte { return []byte{1, 2, 3} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, u, _ := sendLoop(t)
			s, peer := pooled(t, l, u)
			defer l.closeSock(s)
			over := &attempt{u: u, x: &exchange{q: q}}
			must(t, l.send(over, testWire))
			l.release(over) // its exchange ended: its answer is late
			live := &attempt{u: u, x: &exchange{q: q}}
			must(t, l.send(live, testWire))
			_, err := unix.Write(peer, tc.wire(live.id, over.id))
			must(t, err)
			l.readUpstream(s, time.Now())
			got := l.s.counters.forward.unwanted.Load()
			if tc.retires != (got == 1) || tc.retires != s.retired || got > 1 {
				t.Fatalf("unwanted %d, socket retired %v", got, s.retired)
			}
			if s.attempts[live.id] != live || l.socks[int32(s.fd)] != s {
				t.Fatal("the socket lost its attempt in flight")
			}
		})
	}
}
