package dns

import (
	"context"
	"net"
)

// Net opens the role's sockets; nil means the net package, in the process's
// own network namespace (the daemon's case). Every socket the role opens
// goes through it: the UDP and TCP listeners and every upstream query's
// socket. A test passes a lab namespace, so the role serves and forwards
// inside it from whatever goroutine asks.
type Net interface {
	ListenPacket(ctx context.Context, lc *net.ListenConfig, network, address string) (net.PacketConn, error)
	Listen(ctx context.Context, lc *net.ListenConfig, network, address string) (net.Listener, error)
	DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)
}

// hostNet is the default Net: the net package itself.
type hostNet struct{}

func (hostNet) ListenPacket(ctx context.Context, lc *net.ListenConfig, network, address string) (net.PacketConn, error) {
	return lc.ListenPacket(ctx, network, address)
}

func (hostNet) Listen(ctx context.Context, lc *net.ListenConfig, network, address string) (net.Listener, error) {
	return lc.Listen(ctx, network, address)
}

func (hostNet) DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	return d.DialContext(ctx, network, address)
}
