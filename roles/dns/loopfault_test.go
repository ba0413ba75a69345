package dns

import (
	"log/slog"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// logged is what buf holds (syncBuffer: querylog_test.go).
func logged(buf *syncBuffer) string { return strings.Join(buf.lines(), "\n") }

// TestLoopFaultRateLimited: an error that persists is logged once, not on
// every turn of the loop; another error is logged when it comes.
func TestLoopFaultRateLimited(t *testing.T) {
	buf := new(syncBuffer)
	s := New(Options{Logger: slog.New(slog.NewTextHandler(buf, nil))})
	defer s.Close()
	l := &loop{s: s}
	for range 5 {
		l.reads.note(l, "reading DNS queries", unix.EIO)
	}
	l.reads.note(l, "reading DNS queries", unix.ENOMEM)
	if n := strings.Count(logged(buf), "reading DNS queries"); n != 2 || l.dead {
		t.Fatalf("logged %d times (want 2: one per error), dead %v:\n%s", n, l.dead, logged(buf))
	}
}

// TestLoopStopsOnEBADF: a loop whose listening descriptor is gone stops
// instead of spinning on it.
func TestLoopStopsOnEBADF(t *testing.T) {
	buf := new(syncBuffer)
	s := New(Options{Logger: slog.New(slog.NewTextHandler(buf, nil))})
	defer s.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	f := os.NewFile(uintptr(fd), "udp")
	defer f.Close()
	l, err := newLoop(&udpServer{s: s}, f, fd)
	must(t, err)
	defer l.close()
	l.fd = -1 // never a descriptor: recvmmsg fails with EBADF
	done := make(chan struct{})
	go func() { l.run(); close(done) }()
	eventually(t, "the loop to stop", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	if !l.dead || !strings.Contains(logged(buf), "the loop stops") {
		t.Fatalf("stopped without saying why:\n%s", logged(buf))
	}
}
