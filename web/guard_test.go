package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestGuardHost: a page in a browser of a zone allowed `web` could rebind
// its own name to the box's address and read the status and the leases
// (DNS rebinding). The listener answers only requests that ask for an
// address, localhost, or one of the box's own names.
func TestGuardHost(t *testing.T) {
	srv := New(newFake(), Options{Now: func() time.Time { return testNow }, Names: []string{"gw1", "GW1.home.arpa."}})
	for host, ok := range map[string]bool{
		"192.168.1.1":            true,
		"192.168.1.1:9253":       true,
		"127.0.0.1:9253":         true,
		"[::1]":                  true,
		"[::1]:9253":             true,
		"[2001:db8::1]:9253":     true,
		"localhost":              true,
		"LocalHost:9253":         true,
		"localhost.:9253":        true,
		"gw1":                    true,
		"gw1:9253":               true,
		"gw1.home.arpa":          true,
		"gw1.Home.Arpa.:9253":    true,
		"":                       false,
		"evil.example":           false,
		"evil.example:9253":      false,
		"gw1.evil.example":       false,
		"localhost.evil.example": false,
		"192.168.1.1.nip.io":     false,
		"::1":                    false, // a v6 literal must be bracketed
		"[192.168.1.1]:9253":     false,
		"[gw1]:9253":             false,
		"192.168.1.1:http":       false,
		"192.168.1.1:":           false,
		"gw1:9253:9253":          false,
	} {
		for _, path := range []string{"/", "/status.json", "/metrics", "/static/style.css"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Host = host
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, req)
			switch {
			case ok && w.Code != http.StatusOK:
				t.Errorf("GET %s with Host %q: %d, want 200", path, host, w.Code)
			case !ok && (w.Code != http.StatusMisdirectedRequest || !strings.Contains(w.Body.String(), "ask for this box by its address or its name")):
				t.Errorf("GET %s with Host %q: %d %q, want 421 and why", path, host, w.Code, w.Body)
			}
		}
	}
}
