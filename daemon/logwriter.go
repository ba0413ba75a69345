package daemon

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// logQueue is how many log lines may wait for a slow log output.
const logQueue = 4096

// logWriter hands the daemon's log lines to one goroutine that writes
// them to the real output, so that no packet path ever waits for the log:
// when journald (or whatever reads stderr) stops reading, a write to its
// pipe blocks, and a DNS read loop or the DHCP lease writer that logs a
// line would block with it (dnsmasq's log-async, for the same reason). A
// line that finds the queue full is dropped and counted; once the output
// takes lines again, one line says how many were lost.
type logWriter struct {
	out   io.Writer
	json  bool // the lines are JSON (log_format = "json")
	lines chan []byte
	done  chan struct{}

	mu      sync.Mutex
	dropped int
	closed  bool
}

func newLogWriter(out io.Writer, format string) *logWriter {
	w := &logWriter{out: out, json: format == "json", lines: make(chan []byte, logQueue), done: make(chan struct{})}
	go w.run()
	return w
}

// Write queues one line (slog's handlers write each record with one call)
// and never blocks.
func (w *logWriter) Write(p []byte) (int, error) {
	line := append([]byte(nil), p...) // the handler reuses p
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	select {
	case w.lines <- line:
	default:
		w.dropped++
	}
	return len(p), nil
}

func (w *logWriter) run() {
	defer close(w.done)
	for line := range w.lines {
		w.out.Write(line)
		w.mu.Lock()
		n := w.dropped
		w.dropped = 0
		w.mu.Unlock()
		if n > 0 {
			w.out.Write(w.droppedLine(n, time.Now()))
		}
	}
}

// Close stops queueing and waits up to wait for the queued lines to be
// written.
func (w *logWriter) Close(wait time.Duration) {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.lines)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(wait):
	}
}

// droppedLine says, in the log's own format, that n lines were lost.
func (w *logWriter) droppedLine(n int, now time.Time) []byte {
	const msg = "log lines dropped: the log output did not take them in time"
	ts := now.Format(time.RFC3339Nano)
	if w.json {
		return fmt.Appendf(nil, "{\"time\":%q,\"level\":\"WARN\",\"msg\":%q,\"count\":%d}\n", ts, msg, n)
	}
	return fmt.Appendf(nil, "time=%s level=WARN msg=%q count=%d\n", ts, msg, n)
}
