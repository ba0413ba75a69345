package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMalformedControlRequests: garbage on the control socket gets an
// error message, not a reset, and a flood of it is one warning per period.
func TestMalformedControlRequests(t *testing.T) {
	var logs bytes.Buffer
	d := New(Options{Subsystems: newFakeOS().subsystems(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	d.badRequests.period = time.Hour // the test is not about the clock
	path := filepath.Join(t.TempDir(), "control.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go d.serveControl(l)
	for i := range 50 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		c.(*net.UnixConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadBytes('\n')
		c.Close()
		var resp Response
		if err != nil || json.Unmarshal(line, &resp) != nil || !strings.Contains(resp.Error, "malformed request") {
			t.Fatalf("request %d: answer %q, %v", i, line, err)
		}
	}
	if n := strings.Count(logs.String(), "malformed control requests"); n != 1 {
		t.Errorf("%d warnings for 50 malformed requests within one period, want 1:\n%s", n, logs.String())
	}
}
