package web

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatewayd/firewall"
	"gatewayd/lab"
)

var screenshotTo = flag.String("screenshot", "", "also write the browser test's screenshot here (docs/web-status.png)")

// TestBrowser serves the page in a lab namespace and loads it in headless
// Chromium from a client namespace: the DOM has the aliases, a lease and a
// non-zero counter, and a screenshot is taken.
func TestBrowser(t *testing.T) {
	lab.RequireTools(t, "chromium")
	l := lab.New(t)
	gw, err := l.Namespace("gw")
	if err != nil {
		t.Fatal(err)
	}
	client, err := l.Namespace("client")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Link(gw, "eth1", client, "eth0"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		ns   *lab.Namespace
		dev  string
		cidr string
	}{{gw, "eth1", "198.51.100.1/24"}, {client, "eth0", "198.51.100.10/24"}} {
		if err := a.ns.Addr(a.dev, a.cidr); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr := fmt.Sprintf("198.51.100.1:%d", DefaultPort)
	ln, err := gw.Listen(ctx, &net.ListenConfig{}, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	src := newFake()
	src.set(func(st *Status) {
		for i := range st.Firewall.Aliases {
			st.Firewall.Aliases[i].In.Bytes += 1e6
			st.Firewall.Aliases[i].Out.Bytes += 1e6
		}
	})
	srv := New(src, Options{Now: func() time.Time { return testNow }, Logger: lab.Logger(t)})
	seedHistory(srv.hist, src.st.Firewall.Aliases) // Serve's first sample, at testNow, ends them
	served := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	go func() { served <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	dir := t.TempDir()
	url := "http://" + addr + "/?sort=name"
	dom := chromium(t, ctx, client, dir, "--dump-dom", url)
	for _, want := range []string{
		`<span class="host" id="host">gw1</span>`,
		`data-alias="router"`, `data-alias="dhcp"`, `data-alias="dns"`, `data-alias="lab"`,
		`data-address="192.168.1.101"`, "zebra",
		"1\u2009234 pkts", // the dns alias's packets in
		`<path class="in" d="M`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM lacks %q", want)
		}
	}
	// The hostile hostname stayed text: no script element in the DOM.
	if strings.Contains(dom, "<script") || !strings.Contains(dom, "&lt;script&gt;alert") {
		t.Error("the hostile hostname is not shown as text")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	png := filepath.Join(dir, "web-status.png")
	chromium(t, ctx, client, dir, "--screenshot="+png, "--window-size=1280,1840", "--hide-scrollbars", url)
	img, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(img, []byte("\x89PNG")) {
		t.Fatalf("no screenshot: %v", err)
	}
	if *screenshotTo != "" {
		if err := os.WriteFile(*screenshotTo, img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// chromium runs headless Chromium in ns with args and returns its stdout.
func chromium(t *testing.T, ctx context.Context, ns *lab.Namespace, dir string, args ...string) string {
	t.Helper()
	argv := append([]string{"chromium", "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--disable-dev-shm-usage", "--user-data-dir=" + filepath.Join(dir, "profile")}, args...)
	cmd := ns.Command(ctx, argv...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := ns.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// seedHistory fills the hour before testNow with samples that end at the
// counters cs, so the charts have something to draw: a slow wave per alias.
func seedHistory(h *history, cs []firewall.AliasCounters) {
	for i := h.size() - 1; i >= 1; i-- {
		var back []firewall.AliasCounters
		for j, c := range cs {
			var din, dout uint64
			for k := range i {
				w := uint64(max(12-(k+j*7)%24, (k+j*7)%24-12)) + 2 // a triangle wave
				din += w * 20
				dout += w * 12
			}
			back = append(back, firewall.AliasCounters{Alias: c.Alias,
				In: firewall.Count{Bytes: c.In.Bytes - din}, Out: firewall.Count{Bytes: c.Out.Bytes - dout}})
		}
		h.add(testNow.Add(-time.Duration(i)*h.every), back)
	}
}
