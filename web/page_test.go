package web

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatewayd/firewall"
)

func get(t *testing.T, srv *Server, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, request(http.MethodGet, target, nil))
	return w
}

func TestPageShowsTheBox(t *testing.T) {
	srv := newTestServer(newFake())
	w := get(t, srv, "/")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{
		`<span class="host" id="host">gw1</span>`,
		`<b id="generation">3</b>`,
		`<meta http-equiv="refresh" content="30">`,
		// every alias, its address, label, state and holder
		`data-alias="router"`, "192.168.1.1/24", "eth1:0", "<td>up</td>", "<td>held by gw2</td>",
		// roles and their health
		`data-role="dns"`, "1/2 upstreams healthy", `data-role="dhcp"`, "serving",
		// zones with policy and counters
		`data-zone="lan"`, `title="tcp/22">ssh</span>`, `<span class="svc">lab</span>`, "77 pkts", `data-zone="upstream"`, "42 pkts",
		// pools with a use bar, leases
		`<meter min="0" max="100"`, `value="3"`, `data-address="192.168.1.101"`, "zebra", "02:00:00:00:00:01",
		// DNS
		"120 / 10000", `data-upstream="192.0.2.53:53"`, "failing", "12.5 ms",
		// reloads
		"2 reloads, 1 failed", "10m ago",
		// no script anywhere, assets from this listener only
		`href="/static/style.css"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(strings.ToLower(body), "<script") {
		t.Error("page has a script element")
	}
	if m := regexp.MustCompile(`(src|href)="(https?:)?//`).FindString(body); m != "" {
		t.Errorf("page loads something from outside: %s", m)
	}
}

// Names from clients (DHCP hostnames) and from errors are escaped.
func TestPageEscapes(t *testing.T) {
	src := newFake()
	src.set(func(st *Status) {
		st.Aliases[0].Conflict = hostile
		st.Degraded = hostile
	})
	body := get(t, newTestServer(src), "/").Body.String()
	if strings.Contains(body, hostile) || strings.Contains(body, "<script>") {
		t.Fatal("a hostile name reached the page unescaped")
	}
	if n := strings.Count(body, html.EscapeString(`<script>alert(`)); n < 4 {
		t.Errorf("hostile name shown escaped %d times, want it in the lease, the reload error, the conflict and the banner", n)
	}
}

func TestPageSortsLeases(t *testing.T) {
	srv := newTestServer(newFake())
	order := func(query string) string {
		body := get(t, srv, "/"+query).Body.String()
		var got []string
		for _, m := range regexp.MustCompile(`data-address="([0-9.]+)"`).FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		return strings.Join(got, " ")
	}
	for query, want := range map[string]string{
		"":               "192.168.1.100 192.168.1.101 192.168.1.102",
		"?sort=address":  "192.168.1.100 192.168.1.101 192.168.1.102",
		"?sort=name":     "192.168.1.100 192.168.1.101 192.168.1.102", // "<script…" < "zebra", unnamed last
		"?sort=expiry":   "192.168.1.102 192.168.1.101 192.168.1.100",
		"?sort=whatever": "192.168.1.100 192.168.1.101 192.168.1.102",
	} {
		if got := order(query); got != want {
			t.Errorf("GET /%s: leases %s, want %s", query, got, want)
		}
	}
	body := get(t, srv, "/?sort=expiry").Body.String()
	if !strings.Contains(body, "expires ▾") || !strings.Contains(body, `<a href="?sort=name#leases">name</a>`) {
		t.Error("the sorted column is not marked, or the others are not links")
	}
}

func TestPageReadOnlyAndHeaders(t *testing.T) {
	srv := newTestServer(newFake())
	w := get(t, srv, "/")
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := w.Header().Get(k); !strings.HasPrefix(got, want) {
			t.Errorf("header %s = %q, want %q…", k, got, want)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		for _, path := range []string{"/", "/status.json", "/static/style.css"} {
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, request(m, path, nil))
			if w.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, path, w.Code)
			}
		}
	}
	if w := get(t, srv, "/nothing"); w.Code != http.StatusNotFound {
		t.Errorf("GET /nothing: %d, want 404", w.Code)
	}
	css := get(t, srv, "/static/style.css")
	if css.Code != http.StatusOK || !strings.HasPrefix(css.Header().Get("Content-Type"), "text/css") {
		t.Errorf("GET /static/style.css: %d %s", css.Code, css.Header().Get("Content-Type"))
	}
}

// /status.json is the control socket's status, indented as `gatewayd status
// --json` prints it.
func TestStatusJSON(t *testing.T) {
	src := newFake()
	w := get(t, newTestServer(src), "/status.json")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status.json: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	raw, _ := src.StatusJSON()
	want, err := IndentJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	if w.Body.String() != string(want) {
		t.Errorf("status.json:\n%s\nwant:\n%s", w.Body, want)
	}
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v["host"] != "gw1" {
		t.Errorf("status.json does not decode to the status: %v %v", err, v)
	}
	if !strings.HasPrefix(w.Body.String(), "{\n  \"generation\": 3,") {
		t.Errorf("status.json is not indented by two spaces with keys sorted:\n%s", w.Body)
	}
}

func TestChart(t *testing.T) {
	h := newHistory(30*time.Second, time.Hour)
	start := testNow.Add(-time.Hour)
	var in uint64
	for i := range 200 { // more than a ring holds
		in += uint64(i%10) * 30
		h.add(start.Add(time.Duration(i-80)*30*time.Second), []firewall.AliasCounters{{Alias: "dns", In: firewall.Count{Bytes: in}}})
	}
	ss := h.series("dns")
	if len(ss) != h.size() || !ss[0].at.Before(ss[len(ss)-1].at) {
		t.Fatalf("series: %d samples, want %d, oldest first", len(ss), h.size())
	}
	c := chartOf(ss, testNow, time.Hour)
	if c.Points != h.size()-1 || c.Peak != "9 B/s" || !strings.HasPrefix(c.In, "M") || strings.Count(c.In, "M") != 1 {
		t.Errorf("chart: %d points, peak %s, in %.40s…", c.Points, c.Peak, c.In)
	}
	// The table was replaced: its counters restarted, the line breaks there.
	h.add(testNow.Add(30*time.Second), []firewall.AliasCounters{{Alias: "dns", In: firewall.Count{Bytes: 5}}})
	h.add(testNow.Add(time.Minute), []firewall.AliasCounters{{Alias: "dns", In: firewall.Count{Bytes: 95}}})
	c = chartOf(h.series("dns"), testNow.Add(time.Minute), time.Hour)
	if strings.Count(c.In, "M") != 2 || c.Peak != "9 B/s" {
		t.Errorf("after a reset: in %q, peak %s", c.In, c.Peak)
	}
	// An alias gone for longer than the window is forgotten.
	h.add(testNow.Add(2*time.Hour), nil)
	if h.series("dns") != nil {
		t.Error("an alias gone for two hours still has a ring")
	}
}

func TestTexts(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := bytesText(n); got != want {
			t.Errorf("bytesText(%d) = %q, want %q", n, got, want)
		}
	}
	if got := countText(1234567); got != "1\u2009234\u2009567" {
		t.Errorf("countText = %q", got)
	}
	if got := untilText(11*time.Hour + 58*time.Minute + 10*time.Second); got != "in 11h58m" {
		t.Errorf("untilText = %q", got)
	}
}

// Before the first apply the daemon has no config and no part: the page
// still renders.
func TestPageBeforeFirstApply(t *testing.T) {
	w := get(t, newTestServer(&fakeSource{}), "/")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "no reload since the daemon started") {
		t.Errorf("GET / on an empty daemon: %d\n%s", w.Code, w.Body)
	}
	head := httptest.NewRecorder()
	newTestServer(newFake()).Handler().ServeHTTP(head, request(http.MethodHead, "/", nil))
	if head.Code != http.StatusOK {
		t.Errorf("HEAD /: %d", head.Code)
	}
}

// TestIndentJSONKeepsIntegers: counters pass 2^53, where a float64 loses
// digits; the indented status must carry the daemon's numbers exactly.
func TestIndentJSONKeepsIntegers(t *testing.T) {
	raw := []byte(`{"b":{"bytes":18446744073709551615,"packets":9007199254740993},"a":[1.5,-0,1e3]}`)
	got, err := IndentJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": [\n    1.5,\n    -0,\n    1e3\n  ],\n  \"b\": {\n    \"bytes\": 18446744073709551615,\n    \"packets\": 9007199254740993\n  }\n}\n"
	if string(got) != want {
		t.Errorf("IndentJSON =\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{`{"a":1} {"b":2}`, `{"a":1}x`, `{"a":`, ``} {
		if _, err := IndentJSON([]byte(bad)); err == nil {
			t.Errorf("IndentJSON(%q) accepted it", bad)
		}
	}
}
