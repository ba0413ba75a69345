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

// TestBatchSendDrops: a full send buffer drops the rest of the batch at
// once; a reply refused for its destination alone is skipped and the rest
// are sent. Both are counted.
func TestBatchSendDrops(t *testing.T) {
	s := New(Options{Logger: discard})
	defer s.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	b := newBatch()
	reply := make([]byte, 40)
	// A destination no AF_UNIX socket takes (EINVAL), then two for the
	// socket's peer (no address).
	b.names[0].Family = unix.AF_INET6
	b.queue(0, &b.names[0], unix.SizeofSockaddrInet6, reply)
	b.queue(1, &b.names[1], 0, reply)
	b.queue(2, &b.names[2], 0, reply)
	b.send(uintptr(fds[0]), 3, s)
	got := 0
	for {
		if _, _, err := unix.Recvfrom(fds[1], make([]byte, 64), unix.MSG_DONTWAIT); err != nil {
			break
		}
		got++
	}
	if got != 2 || s.Status().Unsent != 1 {
		t.Fatalf("one refused destination: %d sent, want 2; %d unsent, want 1", got, s.Status().Unsent)
	}

	for unix.Send(fds[0], reply, unix.MSG_DONTWAIT) == nil {
	}
	for i := range 5 {
		b.queue(i, &b.names[1], 0, reply)
	}
	b.send(uintptr(fds[0]), 5, s)
	if n := s.Status().Unsent; n != 1+5 {
		t.Fatalf("a full buffer: %d unsent, want 6", n)
	}
}
