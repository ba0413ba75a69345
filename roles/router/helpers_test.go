package router

import (
	"log/slog"
	"testing"

	"github.com/vishvananda/netlink"
)

type netlinkProto int

func routeProtoOf(p netlinkProto) netlink.RouteProtocol { return netlink.RouteProtocol(p) }

// testLogger logs through t.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
