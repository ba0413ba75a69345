package daemon

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckOutput is a log output that takes nothing until released, as a
// journald that stopped reading.
type stuckOutput struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (o *stuckOutput) Write(p []byte) (int, error) {
	<-o.release
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// TestLogWriterNeverBlocks: with the output stuck, every write returns at
// once; what did not fit is dropped, counted in one line once the output
// takes lines again, and what was queued comes out in order.
func TestLogWriterNeverBlocks(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		out := &stuckOutput{release: make(chan struct{})}
		w := newLogWriter(out, format)
		const n = logQueue + 500
		done := make(chan struct{})
		go func() {
			for i := range n {
				fmt.Fprintf(w, "line %d\n", i)
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // a hang detector, not a timing
			t.Fatalf("%s: a write waited for the stuck output", format)
		}
		close(out.release)
		w.Close(10 * time.Second)
		got := out.buf.String()
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		// The first line may have been taken before the output stuck, so
		// up to one more than the queue is written.
		kept := 0
		for i, l := range lines {
			if strings.HasPrefix(l, "line ") {
				if l != fmt.Sprintf("line %d", kept) {
					t.Fatalf("%s: line %d is %q, want line %d: order lost", format, i, l, kept)
				}
				kept++
			}
		}
		dropped := n - kept
		if kept < logQueue || dropped < 1 {
			t.Fatalf("%s: %d lines kept, %d dropped", format, kept, dropped)
		}
		want := fmt.Sprintf("count=%d", dropped)
		if format == "json" {
			want = fmt.Sprintf(`"count":%d}`, dropped)
		}
		if !strings.Contains(got, "log lines dropped") || !strings.Contains(got, want) {
			t.Errorf("%s: no line counting the %d dropped:\n%s", format, dropped, lines[len(lines)-1])
		}
	}
}
