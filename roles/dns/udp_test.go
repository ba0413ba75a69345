package dns

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUDPServerLoopFails: a socket whose read loop cannot be made fails
// the whole server (its share of the clients would go unread), and the
// loops made for the others are closed.
func TestUDPServerLoopFails(t *testing.T) {
	s := New(Options{Logger: discard})
	defer s.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	good := os.NewFile(uintptr(fd), "udp")
	defer good.Close()
	// A regular file: epoll takes no such descriptor, as newLoop fails
	// when no descriptor is left for its own.
	bad, err := os.CreateTemp(t.TempDir(), "not-a-socket")
	must(t, err)
	defer bad.Close()
	u, err := newUDPServer(s, []*os.File{good, bad})
	if err == nil {
		u.discard()
		t.Fatal("a socket without its read loop, and the server was made")
	}
	t.Log(err)
	s.lat.mu.Lock()
	defer s.lat.mu.Unlock()
	if len(s.lat.free) != len(s.lat.loops) || len(s.lat.loops) == 0 {
		t.Fatalf("%d loops made, %d closed", len(s.lat.loops), len(s.lat.free))
	}
}
