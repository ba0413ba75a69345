package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
	"golang.org/x/sys/unix"
)

// shutdownWait bounds how long closing listeners waits for the queries
// they are still answering.
const shutdownWait = 2 * time.Second

const (
	maxTCPConns = 256              // TCP clients served at once; more wait in the backlog
	tcpIdle     = 10 * time.Second // an idle TCP connection is closed after this
)

// listeners are the UDP and TCP servers on port 53 of one address.
type listeners struct {
	addr netip.AddrPort
	udp  *udpServer
	tcp  *dns.Server
}

// listen opens UDP and TCP port 53 on addr through n and starts serving
// them: one UDP socket and read loop per core (see udpLoops), one TCP
// socket. The sockets are bound with IP_FREEBIND, so they come up even
// before the alias is on the NIC. When listen returns, every socket is
// bound, the TCP server accepts, and every UDP socket has its read loop
// made and started (a loop that cannot be made fails listen).
func listen(n Net, addr netip.AddrPort, s *Server) (*listeners, error) {
	lc := &net.ListenConfig{Control: freebind}
	ctx := context.Background()
	loops := udpLoops()
	udp, errU := listenUDP(n, addr, loops)
	var u *udpServer
	if errU == nil {
		if u, errU = newUDPServer(s, udp); errU != nil {
			errU = fmt.Errorf("serving UDP: %w", errU)
		}
	}
	var ln net.Listener
	var errT error
	if errU == nil {
		ln, errT = n.Listen(ctx, lc, "tcp", addr.String())
	}
	if err := errors.Join(errU, errT); err != nil {
		if u != nil {
			u.discard()
		}
		closeFiles(udp)
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	// TCP: pipelined queries on one connection without a cap (miekg's
	// default closes after 128, dropping what the client still awaits), at
	// most maxTCPConns connections at once.
	tcp := &dns.Server{
		Listener: netutil.LimitListener(ln, maxTCPConns), MaxTCPQueries: -1,
		IdleTimeout: func() time.Duration { return tcpIdle },
		Handler:     handler{s}, MsgAcceptFunc: s.acceptTCP, MsgInvalidFunc: s.invalidQuery,
	}
	// The server reports once when it serves, or with the error that
	// stopped it first.
	events := make(chan error, 2)
	tcp.NotifyStartedFunc = func() { events <- nil }
	go func() {
		err := tcp.ActivateAndServe()
		if err != nil {
			s.log.Error("DNS listener stopped", "addr", addr.String(), "err", err)
		}
		events <- fmt.Errorf("serving TCP on %s: %w", addr, err)
	}()
	if err := <-events; err != nil {
		u.discard()
		closeFiles(udp)
		ln.Close()
		return nil, err
	}
	reserveProcs(loops)
	u.start()
	return &listeners{addr: addr, tcp: tcp, udp: u}, nil
}

// maxUDPLoops bounds the UDP read loops, whatever the core count.
const maxUDPLoops = 16

// udpLoops is how many UDP sockets and read loops serve the address: one
// per core the process may run on, as unbound's num-threads.
func udpLoops() int {
	return max(1, min(runtime.NumCPU(), maxUDPLoops))
}

// reserveProcs makes room for the read loops in the Go scheduler. A loop
// blocked in recvmmsg keeps its P (the scheduler's right to run Go code):
// with no P left over, the runtime would take it back after every short
// wait, waking a thread each time, and the rest of the daemon would run
// only in those gaps. One more P than loops leaves the rest of the process
// its own; a P held by a blocked loop costs no CPU.
func reserveProcs(loops int) {
	if runtime.GOMAXPROCS(0) <= loops {
		runtime.GOMAXPROCS(loops + 1)
	}
}

// socketBuffer is what the kernel may queue on one UDP socket: a burst of
// some thousands of queries (a site's clients after a power cut) waits for
// its loop instead of being dropped, as unbound's so-rcvbuf advice has it.
const socketBuffer = 4 << 20

// listenUDP opens n sockets on addr through nt: the first bound alone, so
// that a port another program holds is an error as it always was, then
// opened to SO_REUSEPORT for the others, which the kernel joins to it and
// spreads queries over by their source. Each is taken out of Go's
// netpoller (detach).
func listenUDP(nt Net, addr netip.AddrPort, n int) ([]*os.File, error) {
	var files []*os.File
	for i := range n {
		lc := &net.ListenConfig{Control: freebind}
		if i > 0 {
			lc.Control = func(network, address string, c syscall.RawConn) error {
				return errors.Join(freebind(network, address, c), reusePort(c))
			}
		}
		pc, err := nt.ListenPacket(context.Background(), lc, "udp", addr.String())
		if err == nil {
			var f *os.File
			f, err = detach(pc, i == 0 && n > 1)
			files = append(files, f)
		}
		if err != nil {
			closeFiles(files)
			return nil, fmt.Errorf("UDP socket %d of %d: %w", i+1, n, err)
		}
	}
	return files, nil
}

// detach takes a socket out of Go's hands: a duplicate descriptor in
// blocking mode, and pc closed, which also removes it from the netpoller's
// epoll set (else every query would wake the netpoller's thread too).
// With reuse the socket is opened to SO_REUSEPORT first.
func detach(pc net.PacketConn, reuse bool) (*os.File, error) {
	defer pc.Close()
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("the UDP socket is a %T, not a socket", pc)
	}
	if reuse {
		rc, err := sc.SyscallConn()
		if err == nil {
			err = reusePort(rc)
		}
		if err != nil {
			return nil, err
		}
	}
	fd, err := dupSocket(sc)
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err == nil && unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer) // capped at net.core.rmem_max
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	return os.NewFile(uintptr(fd), "udp "+pc.LocalAddr().String()), nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// close stops both servers, letting queries being answered finish for up
// to shutdownWait, and closes the sockets.
func (l *listeners) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	errT := l.tcp.ShutdownContext(ctx)
	if errors.Is(errT, context.DeadlineExceeded) {
		errT = nil // the socket is closed anyway; slow forwards lose their reply
	}
	errU := l.udp.close()
	if err := errors.Join(errU, errT); err != nil {
		return fmt.Errorf("closing the listeners on %s: %w", l.addr, err)
	}
	return nil
}

// reusePort opens a socket to SO_REUSEPORT.
func reusePort(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	return errors.Join(err, serr)
}

// freebind lets a socket bind an address the host does not have yet.
func freebind(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "udp6" || network == "tcp6" {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
	})
	return errors.Join(err, serr)
}
