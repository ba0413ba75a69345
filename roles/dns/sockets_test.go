package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"gatewayd/lab"
)

// guardNet is the role's socket seam in the lab tests: it opens every
// socket inside a lab namespace and checks, by the socket's own network
// namespace cookie, that it landed there. With verify it also checks that
// the role opened no socket any other way.
type guardNet struct {
	ns     *lab.Namespace
	cookie uint64 // the lab namespace's
	host   uint64 // the process's own namespace's

	mu     sync.Mutex
	dials  map[string]int            // "udp" / "tcp" → dials asked for
	ports  map[int]bool              // the local ports of the UDP sockets it dialled
	listen map[string]netip.AddrPort // "udp" / "tcp" → the latest listener
	errs   []error                   // sockets found outside the namespace
}

// newGuardNet makes the seam for ns. Its cleanup, registered before the
// caller starts a Server on it (so it runs after the Server's Close),
// fails the test for any socket that landed elsewhere.
func newGuardNet(t testing.TB, ns *lab.Namespace) *guardNet {
	t.Helper()
	g := &guardNet{ns: ns, dials: map[string]int{}, ports: map[int]bool{}, listen: map[string]netip.AddrPort{}}
	var err error
	// A goroutine that is not locked to a thread runs in the process's
	// own namespace; Do's goroutine runs in the lab's.
	g.host, err = newSocketCookie()
	must(t, err)
	must(t, ns.Do(func() error {
		var err error
		g.cookie, err = newSocketCookie()
		return err
	}))
	if g.host == g.cookie {
		t.Fatalf("namespace %s has the process's own cookie", ns)
	}
	t.Cleanup(func() {
		if err := g.stray(); err != nil {
			t.Error(err)
		}
	})
	return g
}

func (g *guardNet) ListenPacket(ctx context.Context, lc *net.ListenConfig, network, address string) (net.PacketConn, error) {
	pc, err := g.ns.ListenPacket(ctx, lc, network, address)
	if err == nil {
		g.opened("udp listener", pc.(syscall.Conn))
		g.listened("udp", pc.LocalAddr())
	}
	return pc, err
}

func (g *guardNet) Listen(ctx context.Context, lc *net.ListenConfig, network, address string) (net.Listener, error) {
	ln, err := g.ns.Listen(ctx, lc, network, address)
	if err == nil {
		g.opened("tcp listener", ln.(syscall.Conn))
		g.listened("tcp", ln.Addr())
	}
	return ln, err
}

func (g *guardNet) DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	g.mu.Lock()
	g.dials[network]++
	g.mu.Unlock()
	c, err := g.ns.DialContext(ctx, d, network, address)
	if err == nil {
		g.opened(network+" socket to "+address, c.(syscall.Conn))
		if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
			g.mu.Lock()
			g.ports[la.Port] = true
			g.mu.Unlock()
		}
	}
	return c, err
}

// dialledFrom reports whether the seam handed out a UDP socket on port.
func (g *guardNet) dialledFrom(port int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ports[port]
}

func (g *guardNet) listened(network string, a net.Addr) {
	ap, err := netip.ParseAddrPort(a.String())
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.errs = append(g.errs, fmt.Errorf("%s listener on %s: %w", network, a, err))
		return
	}
	g.listen[network] = ap
}

// opened checks that the socket the seam handed out is in the namespace.
func (g *guardNet) opened(what string, c syscall.Conn) {
	ck, err := connCookie(c)
	if err == nil && ck != g.cookie {
		err = fmt.Errorf("in namespace cookie %d, want %s's %d", ck, g.ns, g.cookie)
	}
	if err != nil {
		g.mu.Lock()
		g.errs = append(g.errs, fmt.Errorf("%s: %w", what, err))
		g.mu.Unlock()
	}
}

// dialed reports how many upstream sockets of network the role asked for.
func (g *guardNet) dialed(network string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dials[network]
}

// verify checks, at a point where no query is in flight, that every socket
// of srv came through the seam into the namespace: the running listeners
// are the seam's latest, upstream queries went out on sockets dialled
// through it (a read loop sends several from one socket of its pool), and
// no internet socket of the process is in its own namespace.
func (g *guardNet) verify(t testing.TB, srv *Server) {
	t.Helper()
	st := srv.Status() // before the dial count: a query counts before it dials
	var queries uint64
	for _, u := range st.Upstreams {
		queries += u.Queries
	}
	g.mu.Lock()
	errs := errors.Join(g.errs...)
	udp, tcp, dials := g.listen["udp"], g.listen["tcp"], g.dials["udp"]
	g.mu.Unlock()
	if errs != nil {
		t.Fatalf("sockets outside namespace %s: %v", g.ns, errs)
	}
	if st.Running && (udp.String() != st.Addr || tcp.String() != st.Addr) {
		t.Fatalf("the server listens on %s, but the seam opened UDP %s and TCP %s", st.Addr, udp, tcp)
	}
	if queries > 0 && dials == 0 {
		t.Fatalf("%d upstream queries but no UDP socket through the seam", queries)
	}
	if err := g.stray(); err != nil {
		t.Fatal(err)
	}
}

// stray finds the process's internet sockets that are in its own
// namespace: every socket of the tests and of the role lives in a lab one.
func (g *guardNet) stray() error {
	if err := errors.Join(g.errs...); err != nil {
		return fmt.Errorf("sockets outside namespace %s: %w", g.ns, err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing the process's files: %w", err)
	}
	var stray []string
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A file closed since the listing gives EBADF, a file that is no
		// socket ENOTSOCK: neither is a stray socket.
		domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) {
			continue
		}
		if ck, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE); err == nil && ck == g.host {
			link, _ := os.Readlink("/proc/self/fd/" + e.Name())
			stray = append(stray, e.Name()+" → "+link)
		}
	}
	if len(stray) > 0 {
		return fmt.Errorf("internet sockets in the process's own network namespace: %v", stray)
	}
	return nil
}

// newSocketCookie is the network namespace cookie of the calling thread.
func newSocketCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening a socket: %w", err)
	}
	defer unix.Close(fd)
	ck, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("reading a socket's namespace cookie: %w", err)
	}
	return ck, nil
}

// connCookie is the network namespace cookie of c's socket.
func connCookie(c syscall.Conn) (uint64, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var ck uint64
	var serr error
	if err := raw.Control(func(fd uintptr) {
		ck, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	}); err != nil {
		return 0, err
	}
	return ck, serr
}

// TestSocketsStayInNamespace runs the role with a lab namespace as its
// seam, calls Set and asks from ordinary goroutines (no Do anywhere), and
// checks that every socket it opened is in that namespace: the listeners,
// and the UDP and TCP sockets handler goroutines dial upstream on whatever
// thread they run. 10.99.0.1 only exists in the lab.
func TestSocketsStayInNamespace(t *testing.T) {
	lab.Require(t)
	l := lab.New(t)
	a, err := l.Namespace("a")
	must(t, err)
	b, err := l.Namespace("b")
	must(t, err)
	must(t, l.Link(a, "veth0", b, "veth0"))
	must(t, a.Addr("veth0", "10.99.0.1/24"))
	must(t, b.Addr("veth0", "10.99.0.2/24"))
	up := startFakeUpstream(t, b, "10.99.0.2")
	g := newGuardNet(t, a)
	srv := New(Options{Logger: lab.Logger(t), Net: g})
	t.Cleanup(func() { srv.Close() })
	must(t, srv.Set(context.Background(), siteConfig(func(c *Config) {
		c.Listen = netip.MustParseAddr("10.99.0.1")
		c.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("10.99.0.2:53")}
		c.Allowed = append(c.Allowed, netip.MustParsePrefix("10.99.0.0/24"))
	})))
	g.verify(t, srv)

	// 50 names at once, so 50 handler goroutines dial upstream side by
	// side; every fifth answer does not fit UDP and is fetched over TCP.
	conn, err := b.DialContext(context.Background(), &net.Dialer{}, "udp", "10.99.0.1:53")
	must(t, err)
	defer conn.Close()
	co := &dns.Conn{Conn: conn, UDPSize: 4096}
	const n = 50
	for i := range n {
		name := fmt.Sprintf("n%d.example.com.", i)
		if i%5 == 0 {
			name = fmt.Sprintf("huge%d.example.com.", i)
		}
		q := newQuery(name, dns.TypeA, withEDNS(1232, false))
		q.Id = uint16(i + 1)
		must(t, co.WriteMsg(q))
	}
	co.SetReadDeadline(time.Now().Add(10 * time.Second))
	answered := map[uint16]bool{}
	for len(answered) < n {
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("%d of %d answered: %v", len(answered), n, err)
		}
		if r.Rcode != dns.RcodeSuccess || (len(r.Answer) == 0 && !r.Truncated) {
			t.Fatalf("answer %d: %v", r.Id, r)
		}
		answered[r.Id] = true
	}
	g.verify(t, srv)
	if udp, tcp := g.dialed("udp"), g.dialed("tcp"); udp == 0 || tcp < n/5 {
		t.Fatalf("%d UDP and %d TCP upstream sockets through the seam, want some and %d", udp, tcp, n/5)
	}
	// Every query the upstream saw came from a socket the seam made.
	for _, p := range up.sourcePorts() {
		if !g.dialledFrom(p) {
			t.Fatalf("an upstream query came from port %d, which no socket the seam dialled has", p)
		}
	}
}
