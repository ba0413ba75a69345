package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
// them. The sockets are bound with IP_FREEBIND, so they come up even before
// the alias is on the NIC. When listen returns, both sockets are bound and
// being served.
func listen(n Net, addr netip.AddrPort, s *Server) (*listeners, error) {
	lc := &net.ListenConfig{Control: freebind}
	ctx := context.Background()
	pc, errU := n.ListenPacket(ctx, lc, "udp", addr.String())
	var ln net.Listener
	var errT error
	if errU == nil {
		ln, errT = n.Listen(ctx, lc, "tcp", addr.String())
	}
	udp, ok := pc.(*net.UDPConn)
	if errU == nil && !ok {
		errU = fmt.Errorf("the UDP socket is a %T, not a *net.UDPConn", pc)
	}
	if err := errors.Join(errU, errT); err != nil {
		closeAll(pc, ln)
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
		closeAll(pc, ln)
		return nil, err
	}
	return &listeners{addr: addr, tcp: tcp, udp: serveUDP(s, udp, addr)}, nil
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

func closeAll(pc net.PacketConn, ln net.Listener) {
	if pc != nil {
		pc.Close()
	}
	if ln != nil {
		ln.Close()
	}
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
