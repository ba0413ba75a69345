package lab

import (
	"context"
	"net"
)

// ListenPacket, Listen and DialContext open a socket inside the namespace,
// whichever goroutine calls them: code under test that opens sockets from
// goroutines of its own (a DNS server dialling its upstreams) takes them as
// its socket seam, so it never needs to know about namespaces. The socket
// stays in the namespace after the call returns.
func (n *Namespace) ListenPacket(ctx context.Context, lc *net.ListenConfig, network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() error {
		var err error
		pc, err = lc.ListenPacket(ctx, network, address)
		return err
	})
	return pc, err
}

// Listen opens a listening socket inside the namespace (see ListenPacket).
func (n *Namespace) Listen(ctx context.Context, lc *net.ListenConfig, network, address string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = lc.Listen(ctx, network, address)
		return err
	})
	return ln, err
}

// DialContext connects from inside the namespace (see ListenPacket). A TCP
// connect may wait a round trip; it holds only its own locked thread.
func (n *Namespace) DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
