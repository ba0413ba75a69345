// Package web serves gatewayd's read-only window on the box over HTTP: the
// Prometheus metrics (/metrics), a status page (/) and the status as JSON
// (/status.json), all read at request time from a Source the daemon
// implements. It keeps nothing but an hour of per-alias byte counters in
// memory for the page's charts.
//
// web changes nothing: it answers GET and HEAD only, calls no method of the
// source that writes, shows no secret, and fetches nothing from outside (its
// style sheet and icon are embedded). It must not import the daemon, and it
// does not choose its address: the caller hands it a listener.
package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultPort is the port the docs give the listener: [gateway] metrics =
// "127.0.0.1:9253" and the firewall's "web" service, tcp/9253.
const DefaultPort = 9253

//go:embed templates/page.html
var pageHTML string

//go:embed static
var staticFS embed.FS

// Options tune a Server; the zero value is the production setting.
type Options struct {
	Logger *slog.Logger
	// Sample is how often the traffic charts read the counters (30 s);
	// Window how much of it they keep (1 h).
	Sample time.Duration
	Window time.Duration
	// Refresh is how often the page reloads itself (30 s); negative: never.
	Refresh time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
	// Names are the box's own names (its host name, its FQDN) a request
	// may ask for in its Host header, besides an IP literal and localhost:
	// any other name is refused, so a page in a browser cannot rebind its
	// own name to the box's address and read the status (DNS rebinding).
	Names []string
}

// Server is the web listener's handler and the traffic sampler.
type Server struct {
	src     Source
	log     *slog.Logger
	now     func() time.Time
	refresh time.Duration
	version string
	hist    *history
	tmpl    *template.Template
	handler http.Handler
}

// maxInFlight bounds concurrent requests: each reads the whole status.
const maxInFlight = 8

// New makes a Server reading src.
func New(src Source, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sample <= 0 {
		o.Sample = 30 * time.Second
	}
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	switch {
	case o.Refresh == 0:
		o.Refresh = 30 * time.Second
	case o.Refresh < 0:
		o.Refresh = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		src: src, log: o.Logger.With("component", "web"), now: o.Now, refresh: o.Refresh,
		version: buildInfo()[0], hist: newHistory(o.Sample, o.Window),
		tmpl: template.Must(template.New("page").Funcs(template.FuncMap{
			"bytes": bytesText, "count": countText, "ago": agoText,
			"stamp": func(t time.Time) string { return t.Format("2006-01-02 15:04:05") },
			"u64":   func(n int64) uint64 { return uint64(max(n, 0)) },
			"pct":   func(n, p int) int { return n * p / 100 },
		}).Parse(pageHTML)),
	}
	static, _ := fs.Sub(staticFS, "static")
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", s.servePage)
	mux.HandleFunc("/status.json", s.serveJSON)
	mux.Handle("/metrics", promhttp.HandlerFor(registry(src), promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 2,
	}))
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.handler = guard(mux, o.Names)
	return s
}

// Handler answers every path of the listener.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on ln and samples the counters until ctx is done, then
// closes ln and waits for the requests in flight (at most a few seconds).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	sampling, stopSampling := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.sample(sampling)
	}()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = hs.Shutdown(sctx)
		cancel()
		err = <-errc
	case err = <-errc:
	}
	stopSampling()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// sample reads the alias counters now and every Sample until ctx is done.
func (s *Server) sample(ctx context.Context) {
	t := time.NewTicker(s.hist.every)
	defer t.Stop()
	for {
		if st := s.src.Status(); st.FirewallErr == "" {
			s.hist.add(s.now(), st.Firewall.Aliases)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// guard makes every answer read-only and self-contained: only for a Host
// the box answers to (knownHost), GET and HEAD only, a bound on requests in
// flight, and headers that keep the page from being framed, sniffed or made
// to load anything from elsewhere.
func guard(next http.Handler, names []string) http.Handler {
	slots := make(chan struct{}, maxInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if !knownHost(r.Host, names) {
			http.Error(w, "misdirected request: ask for this box by its address or its name", http.StatusMisdirectedRequest)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			http.Error(w, "busy, try again", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// knownHost reports whether hostport, a request's Host, names this box: an
// IPv4 literal, a bracketed IPv6 literal, localhost, or one of names (case
// and a trailing dot aside), each with or without a port. A name a browser
// resolved some other way (DNS rebinding) is none of these.
func knownHost(hostport string, names []string) bool {
	host, bracketed := hostport, false
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		host, bracketed = h, strings.HasPrefix(hostport, "[")
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host, bracketed = host[1:len(host)-1], true
	}
	if a, err := netip.ParseAddr(host); err == nil || bracketed {
		return err == nil && a.Is6() == bracketed
	}
	host = strings.TrimSuffix(host, ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	for _, n := range names {
		if n = strings.TrimSuffix(n, "."); n != "" && strings.EqualFold(host, n) {
			return true
		}
	}
	return false
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := s.tmpl.Execute(&buf, s.buildPage(r.URL.Query())); err != nil {
		s.log.Error("rendering the status page", "err", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request) {
	raw, err := s.src.StatusJSON()
	var out []byte
	if err == nil {
		out, err = IndentJSON(raw)
	}
	if err != nil {
		s.log.Error("reading the status", "err", err)
		http.Error(w, "reading the status failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// IndentJSON is the status as `gatewayd status --json` prints it: decoded
// and encoded again with two-space indentation (object keys sorted). Numbers
// stay the daemon's text (json.Number): counters pass 2^53, where a float64
// would lose digits.
func IndentJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
