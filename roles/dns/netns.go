package dns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// sockets opens every socket of a Server in one network namespace: the one
// the thread that called Set was in. A daemon runs whole inside the
// namespace it manages, and any thread will do; a test runs Set on a thread
// switched into a lab namespace (lab.Namespace.Do), while the handler
// goroutines that dial upstreams run on threads in the host's namespace. So
// when the namespaces differ, sockets are made on a thread locked into the
// captured namespace, never where the goroutine happens to run.
type sockets struct {
	ns    *os.File    // the captured namespace; nil when it is the process's own
	calls chan func() // work for the locked thread
	done  chan struct{}
}

// captureSockets captures the calling thread's network namespace. The
// caller must be on a locked thread if it switched namespaces.
//
// Whether the namespace is "the process's own" cannot be read from
// /proc/self (the main thread may be the very thread a test switched), so
// captureSockets looks at every thread: when any of them is in another
// namespace, the process is mixed and sockets go through the locked thread.
func captureSockets() (*sockets, error) {
	self, err := nsInode("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	mixed, err := threadsElsewhere(self)
	if err != nil {
		return nil, err
	}
	s := &sockets{}
	if !mixed {
		return s, nil
	}
	if s.ns, err = os.Open("/proc/thread-self/ns/net"); err != nil {
		return nil, fmt.Errorf("capturing the network namespace: %w", err)
	}
	s.calls = make(chan func())
	s.done = make(chan struct{})
	started := make(chan error, 1)
	go s.loop(started)
	if err := <-started; err != nil {
		s.ns.Close()
		return nil, err
	}
	return s, nil
}

// threadsElsewhere reports whether a thread of this process is in a network
// namespace other than ns.
func threadsElsewhere(ns uint64) (bool, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false, fmt.Errorf("listing the process's threads: %w", err)
	}
	for _, task := range tasks {
		ino, err := nsInode("/proc/self/task/" + task.Name() + "/ns/net")
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // the thread has exited
		}
		if err != nil {
			return false, err
		}
		if ino != ns {
			return true, nil
		}
	}
	return false, nil
}

// isolated reports whether sockets are made on a thread of their own.
func (s *sockets) isolated() bool { return s.ns != nil }

func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("reading the network namespace %s: %w", path, err)
	}
	return st.Ino, nil
}

// loop runs on a thread locked into the namespace until close. The thread
// is never unlocked: when loop returns, Go discards it instead of reusing a
// thread in the wrong namespace.
func (s *sockets) loop(started chan<- error) {
	runtime.LockOSThread()
	if err := s.enter(); err != nil {
		started <- err
		return
	}
	started <- nil
	for {
		select {
		case fn := <-s.calls:
			fn()
		case <-s.done:
			return
		}
	}
}

func (s *sockets) enter() error {
	if err := unix.Setns(int(s.ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("entering the captured network namespace: %w", err)
	}
	return nil
}

// errSocketsClosed is returned for sockets asked for after close.
var errSocketsClosed = errors.New("the DNS role is stopped")

// do runs fn in the namespace and waits for it. fn must not block for long:
// it holds the namespace's thread.
func (s *sockets) do(fn func()) error {
	if s.ns == nil {
		fn()
		return nil
	}
	ran := make(chan struct{})
	select {
	case s.calls <- func() { fn(); close(ran) }:
	case <-s.done:
		return errSocketsClosed
	}
	<-ran
	return nil
}

// dialUDP opens a connected UDP socket: socket(2) and connect(2) return at
// once, so the namespace's thread is held only briefly.
func (s *sockets) dialUDP(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	var err error
	if err := s.do(func() { c, err = (&net.Dialer{}).DialContext(ctx, "udp", addr) }); err != nil {
		return nil, err
	}
	return c, err
}

// dialTCP connects over TCP. A connect may take a round trip or a timeout,
// so it runs on a fresh thread of its own rather than the shared one.
func (s *sockets) dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	var err error
	if ferr := s.fresh(func() { c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr) }); ferr != nil {
		return nil, ferr
	}
	return c, err
}

// fresh runs fn in the namespace on a new thread, switched into it and
// discarded afterwards, and waits for it.
func (s *sockets) fresh(fn func()) error {
	if s.ns == nil {
		fn()
		return nil
	}
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := s.enter(); err != nil {
			ch <- err
			return
		}
		fn()
		ch <- nil
	}()
	return <-ch
}

// close stops the namespace's thread.
func (s *sockets) close() {
	if s.ns == nil {
		return
	}
	close(s.done)
	s.ns.Close()
}
