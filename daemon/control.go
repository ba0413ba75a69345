package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"gatewayd/config"
)

// Request is one command on the control socket (one JSON object per connection).
type Request struct {
	Op string `json:"op"` // "reload", "plan", "status", "leases", "leases-import"
	// Path and Config carry the file for reload and plan: the CLI reads the file so
	// errors name the path the operator typed.
	Path   string          `json:"path,omitempty"`
	Config string          `json:"config,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	// Confirm, on a reload, undoes it after this long unless a "confirm"
	// request arrives first.
	Confirm time.Duration `json:"confirm,omitempty"`
}

// Response is the daemon's answer.
type Response struct {
	OK      bool     `json:"ok"`
	Error   string   `json:"error,omitempty"`
	Changes []string `json:"changes,omitempty"`
	// Warnings are the config's warnings (file:line:col: warning: ...),
	// apart from the changes.
	Warnings []string        `json:"warnings,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// logBudget lets one log line through per period and counts the rest, so
// a flood of bad input is one warning every ten seconds, not one per packet.
type logBudget struct {
	mu     sync.Mutex
	period time.Duration
	last   time.Time
	held   int
}

// note records one event and returns how many events the line to log now
// stands for, or 0 when it is not time to log.
func (b *logBudget) note(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held++
	if !b.last.IsZero() && now.Sub(b.last) < b.period {
		return 0
	}
	n := b.held
	b.last, b.held = now, 0
	return n
}

// ErrNotRunning means nothing listens on the control socket.
var ErrNotRunning = errors.New("gatewayd is not running")

// Call sends one request to the daemon listening on socket and waits for the answer.
func Call(ctx context.Context, socket string, req Request) (*Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errConnRefused) {
			return nil, fmt.Errorf("%w (no daemon on %s)", ErrNotRunning, socket)
		}
		return nil, fmt.Errorf("connecting to %s: %w", socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, fmt.Errorf("sending %s to %s: %w", req.Op, socket, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, fmt.Errorf("reading the answer to %s from %s: %w", req.Op, socket, err)
	}
	return &resp, nil
}

// listenControl makes the socket: its directory only root may write, the
// socket 0600 from the moment it exists.
func listenControl(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating control directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("control directory %s: %w", dir, err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("control directory %s is writable by others (mode %v); make it 0755 owned by root", dir, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("control directory %s is owned by uid %d, not by this process (uid %d); make it owned by root", dir, st.Uid, os.Geteuid())
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket path %s exists and is not a socket; remove it or set [gateway] control_socket", path)
		}
		// A socket left by a daemon that died: remove it unless someone answers.
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("another gatewayd already listens on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale control socket %s: %w", path, err)
		}
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	return l, nil
}

// serveControl answers requests until the listener closes.
// maxRequest bounds one request: a config file at its limit, escaped as a
// JSON string, with room to spare.
const maxRequest = 8*config.MaxFileSize + 64<<10

// maxClients is how many control connections are answered at once; more
// get "busy" at once, so a flood of connections costs the daemon nothing.
const maxClients = 32

func (d *Daemon) serveControl(l net.Listener) {
	slots := make(chan struct{}, maxClients)
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		select {
		case slots <- struct{}{}:
			d.answering.Add(1)
			go func() {
				defer d.answering.Done()
				defer func() { <-slots }()
				d.answer(conn)
			}()
		default:
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = json.NewEncoder(conn).Encode(&Response{Error: "gatewayd is busy answering other requests; try again"})
			conn.Close()
		}
	}
}

func (d *Daemon) answer(conn net.Conn) {
	defer conn.Close()
	// The request must arrive promptly; the answer may take as long as an apply.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req Request
	if err := json.NewDecoder(io.LimitReader(conn, maxRequest)).Decode(&req); err != nil {
		if n := d.badRequests.note(time.Now()); n > 0 {
			d.log.Warn("malformed control requests", "count", n, "last_err", err)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_ = json.NewEncoder(conn).Encode(&Response{Error: fmt.Sprintf("malformed request (want one JSON object such as {\"op\":\"status\"}): %v", err)})
		return
	}
	resp := d.handle(req)
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		d.log.Warn("writing control answer", "op", req.Op, "err", err)
	}
}

func (d *Daemon) handle(req Request) *Response {
	d.log.Debug("control request", "op", req.Op)
	switch req.Op {
	case "reload":
		changes, warnings, err := d.Reload(req.Path, []byte(req.Config), req.Confirm)
		resp := answer(changes, nil, err)
		resp.Warnings = warnings
		return resp
	case "confirm":
		return answer(nil, nil, d.Confirm())
	case "plan":
		steps, warnings, err := d.PlanText(req.Path, []byte(req.Config))
		resp := answer(steps, nil, err)
		resp.Warnings = warnings
		return resp
	case "status":
		return answer(nil, d.Status(), nil)
	default:
		if h, ok := d.extraOps[req.Op]; ok {
			if d.isStopped() {
				return &Response{Error: "gatewayd is stopping"}
			}
			v, err := h(req.Data)
			return answer(nil, v, err)
		}
		return &Response{Error: fmt.Sprintf("unknown request %q", req.Op)}
	}
}

func answer(changes []string, v any, err error) *Response {
	if err != nil {
		return &Response{Error: err.Error(), Changes: changes}
	}
	r := &Response{OK: true, Changes: changes}
	if v != nil {
		b, merr := json.Marshal(v)
		if merr != nil {
			return &Response{Error: merr.Error()}
		}
		r.Data = b
	}
	return r
}

// logger builds the daemon's root logger from the config.
func newLogger(w io.Writer, level, format string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	_ = lv.UnmarshalText([]byte(orDefault(level, "info")))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
