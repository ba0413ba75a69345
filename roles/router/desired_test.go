package router

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gatewayd/lab"
)

// TestDesired: the sysctls Set holds on the Config's interface, and its
// routes as compared with the kernel's.
func TestDesired(t *testing.T) {
	c := &Config{Interface: "eth1", Routes: []Route{
		rt("default via 192.168.1.254 dev eth1"),
		{To: netip.MustParsePrefix("172.16.1.0/12"), Via: netip.MustParseAddr("192.168.1.250")},
	}}
	var routes []string
	for _, r := range wantedRoutes(c, wan{}) {
		routes = append(routes, r.String())
	}
	if w := []string{"default via 192.168.1.254 dev eth1", "172.16.0.0/12 via 192.168.1.250 dev eth1"}; !slices.Equal(routes, w) {
		t.Errorf("routes %q, want %q", routes, w)
	}
	if up := upstream(c, wan{}); up != "192.168.1.254" {
		t.Errorf("upstream %q", up)
	}
	if up := upstream(&Config{Interface: "eth1", Routes: c.Routes[1:]}, wan{}); up != "" {
		t.Errorf("upstream without a default route: %q", up)
	}
	var keys []string
	for _, s := range forwardingSysctls(c.Interface) {
		keys = append(keys, s.name()+"="+s.Value)
	}
	wantKeys := []string{
		"net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth1.send_redirects=0",
		"net.ipv4.conf.all.accept_redirects=0", "net.ipv4.conf.eth1.accept_redirects=0",
		"net.ipv4.conf.eth1.rp_filter=1", "net.ipv6.conf.eth1.accept_ra=0",
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("sysctls %q, want %q", keys, wantKeys)
	}
}

func TestSysctlNameWithDot(t *testing.T) {
	s := forwardingSysctls("eth1.10")[5]
	if s.Key != "net/ipv4/conf/eth1.10/rp_filter" || s.name() != "net/ipv4/conf/eth1.10/rp_filter" {
		t.Errorf("key %q name %q", s.Key, s.name())
	}
}

func rt(s string) Route {
	f := strings.Fields(s) // "<to> via <gw> dev <if>"
	to := f[0]
	if to == "default" {
		to = "0.0.0.0/0"
	}
	return Route{To: netip.MustParsePrefix(to), Via: netip.MustParseAddr(f[2]), Interface: f[4]}
}

func TestPlanRoutes(t *testing.T) {
	def := "default via 192.168.1.254 dev eth1"
	for _, tc := range []struct {
		name     string
		want     []string
		kernel   map[string]netlinkProto // route → protocol
		owned    []string
		steps    []string
		conflict bool
	}{
		{name: "missing route is added", want: []string{def}, steps: []string{"ip route add " + def}},
		{name: "present and owned: nothing", want: []string{def}, kernel: map[string]netlinkProto{def: 177}, owned: []string{def}},
		{name: "present, not owned: left alone", want: []string{def}, kernel: map[string]netlinkProto{def: 3}},
		{name: "upstream changed: replaced", want: []string{"default via 192.168.1.253 dev eth1"},
			kernel: map[string]netlinkProto{def: 177}, owned: []string{def},
			steps: []string{"ip route replace default via 192.168.1.253 dev eth1"}},
		{name: "someone else's default route: conflict", want: []string{def},
			kernel: map[string]netlinkProto{"default via 10.9.9.9 dev eth0": 3}, conflict: true},
		{name: "owned but changed by hand: conflict, not replaced", want: []string{"default via 192.168.1.253 dev eth1"},
			kernel: map[string]netlinkProto{def: 3}, owned: []string{def}, conflict: true},
		{name: "owned, no longer wanted: deleted", kernel: map[string]netlinkProto{def: 177}, owned: []string{def},
			steps: []string{"ip route del " + def}},
		{name: "no longer wanted but not as added: kept", kernel: map[string]netlinkProto{"default via 192.168.1.9 dev eth1": 177}, owned: []string{def}},
		{name: "the NIC changes: replaced", want: []string{"default via 192.168.1.254 dev eth2"},
			kernel: map[string]netlinkProto{def: 177}, owned: []string{def},
			steps: []string{"ip route replace default via 192.168.1.254 dev eth2"}},
		{name: "add before delete", want: []string{"10.1.0.0/16 via 192.168.1.250 dev eth1"},
			kernel: map[string]netlinkProto{"10.2.0.0/16 via 192.168.1.250 dev eth1": 177}, owned: []string{"10.2.0.0/16 via 192.168.1.250 dev eth1"},
			steps: []string{"ip route add 10.1.0.0/16 via 192.168.1.250 dev eth1", "ip route del 10.2.0.0/16 via 192.168.1.250 dev eth1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []Route
			for _, w := range tc.want {
				want = append(want, rt(w))
			}
			kernel := wire()
			for s, p := range tc.kernel {
				r := rt(s)
				kernel.routes[r.To] = kernelRoute{Route: r, proto: routeProtoOf(p)}
			}
			rec := &record{}
			for _, o := range tc.owned {
				rec.Routes = append(rec.Routes, rt(o))
			}
			steps, pending, conflicts := planRoutes(want, kernel, rec)
			if len(pending) > 0 {
				t.Errorf("pending %v on a wire that is up", pending)
			}
			var got []string
			for _, s := range steps {
				got = append(got, s.String())
			}
			if !slices.Equal(got, tc.steps) {
				t.Errorf("steps %q, want %q", got, tc.steps)
			}
			if (len(conflicts) > 0) != tc.conflict {
				t.Errorf("conflicts %v, want conflict=%v", conflicts, tc.conflict)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.remember(rt("default via 192.168.1.254 dev eth1"))
	r.Sysctls = append(r.Sysctls, changedSysctl{Key: "net/ipv4/ip_forward", Was: "0", Set: "1"})
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	back, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Routes, r.Routes) || !slices.Equal(back.Sysctls, r.Sysctls) {
		t.Errorf("loaded %+v, saved %+v", back, r)
	}
	for name, text := range map[string]string{
		"unknown field": `{"version":1,"routes":[],"sysctls":[],"extra":1}`,
		"version":       `{"version":9,"routes":[],"sysctls":[]}`,
		"bad route":     `{"version":1,"routes":[{"to":"0.0.0.0/0","interface":"eth1"}],"sysctls":[]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, recordFile), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadRecord(dir); err == nil || !strings.Contains(err.Error(), recordFile) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
	if _, err := loadRecord(""); err == nil {
		t.Error("no state dir accepted")
	}
}

// fakeProc makes a /proc/sys tree with the given values.
func fakeProc(t *testing.T, values map[string]string) procSys {
	t.Helper()
	dir := t.TempDir()
	for k, v := range values {
		p := filepath.Join(dir, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return procSys(dir)
}

func TestSysctlsRecordAndRestore(t *testing.T) {
	before := map[string]string{
		"net/ipv4/ip_forward":                 "0",
		"net/ipv4/conf/all/send_redirects":    "1",
		"net/ipv4/conf/eth1/send_redirects":   "1",
		"net/ipv4/conf/all/accept_redirects":  "0",
		"net/ipv4/conf/eth1/accept_redirects": "1",
		"net/ipv4/conf/eth1/rp_filter":        "2",
		"net/ipv6/conf/all/accept_ra":         "1",
		"net/ipv6/conf/eth1/accept_ra":        "1",
	}
	sys := fakeProc(t, before)
	rec, err := loadRecord(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &Router{log: lab.Logger(t), sys: sys, rec: rec}
	n, pending, err := r.setSysctls(forwardingSysctls("eth1"))
	if err != nil || n != 6 || len(pending) != 0 {
		t.Fatalf("wrote %d (want 6: all.accept_redirects was already 0), pending %v, err %v", n, pending, err)
	}
	if n, _, err := r.setSysctls(forwardingSysctls("eth1")); err != nil || n != 0 {
		t.Fatalf("second set wrote %d, err %v", n, err)
	}
	// Someone else changes rp_filter after gatewayd: it stays theirs.
	if err := sys.write("net/ipv4/conf/eth1/rp_filter", "0"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.restoreSysctls(func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	for k, v := range before {
		got, _ := sys.read(k)
		want := v
		if k == "net/ipv4/conf/eth1/rp_filter" {
			want = "0"
		}
		if got != want {
			t.Errorf("%s = %s after release, want %s", k, got, want)
		}
	}
	if len(r.rec.Sysctls) != 0 {
		t.Errorf("record keeps %v", r.rec.Sysctls)
	}
}

func TestSysctlOnlyNet(t *testing.T) {
	if _, err := procSys("/proc/sys").path("kernel/hostname"); err == nil {
		t.Error("a non-net sysctl was accepted")
	}
	if _, err := procSys("/proc/sys").read("net/../kernel/hostname"); err == nil {
		t.Error("a path escaping net/ was accepted")
	}
	if _, err := fakeProc(t, nil).read("net/ipv4/ip_forward"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing sysctl: %v", err)
	}
}

// FuzzRecord: any file in place of router.json loads or is refused with an
// error naming it; what loads saves and loads back the same.
func FuzzRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"routes":[{"to":"0.0.0.0/0","via":"192.168.1.254","interface":"eth1"}],"sysctls":[{"key":"net/ipv4/ip_forward","was":"0","set":"1"}]}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, recordFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := loadRecord(dir)
		if err != nil {
			if !strings.Contains(err.Error(), recordFile) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := r.save(); err != nil {
			t.Fatal(err)
		}
		back, err := loadRecord(dir)
		if err != nil {
			t.Fatalf("a saved record does not load: %v", err)
		}
		if !slices.Equal(back.Routes, r.Routes) || !slices.Equal(back.Sysctls, r.Sysctls) {
			t.Fatalf("round trip changed the record: %+v → %+v", r, back)
		}
	})
}

// TestRecordNeedsTheStateDir: the role does not make the state directory:
// statedir.Lock does, mode 0700, before the daemon opens the role.
func TestRecordNeedsTheStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, err := loadRecord(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a missing state directory: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loading the record made the state directory: %v", err)
	}
}
