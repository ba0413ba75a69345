package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The packaging tests run make from the top of the tree into temporary
// directories (DESTDIR, OUT); nothing is installed on this machine.

// requirePackaging skips, or fails in CI, when a tool is missing.
func requirePackaging(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	switch {
	case len(missing) == 0:
	case os.Getenv("CI") != "":
		t.Fatalf("%s not installed (make deps installs them; CI is set: packaging tests must run)", strings.Join(missing, ", "))
	default:
		t.Skipf("%s not installed (make deps installs them)", strings.Join(missing, ", "))
	}
}

// makeIn runs make in the top of the tree with the given variables.
func makeIn(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", "../.."}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// releaseVersion is the newest entry of the package changelog.
func releaseVersion(t *testing.T) string {
	b, err := os.ReadFile("../../contrib/deb/changelog")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^gatewayd \(([^)]+)\)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("contrib/deb/changelog does not start with gatewayd (VERSION)")
	}
	return string(m[1])
}

func gunzip(t *testing.T, file string) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return b
}

func sameContent(t *testing.T, got []byte, source string) {
	t.Helper()
	want, err := os.ReadFile(source)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the installed copy of %s differs from it", source)
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// checkTree checks what make install put under root with the given PREFIX.
func checkTree(t *testing.T, root, prefix string) {
	t.Helper()
	bin := filepath.Join(root, prefix, "sbin/gatewayd")
	if m := mode(t, bin); m != 0o755 {
		t.Errorf("%s has mode %v, want 0755", bin, m)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "gatewayd "+releaseVersion(t)+"\n") {
		t.Errorf("the installed gatewayd version: %v\n%s\nwant the release %s", err, out, releaseVersion(t))
	}
	// Go stamps the revision in a clone (a .git directory; it does not
	// recognise a worktree's .git file).
	if fi, err := os.Stat("../../.git"); err == nil && fi.IsDir() {
		head, err := exec.Command("git", "-C", "../..", "rev-parse", "HEAD").Output()
		if err == nil && !strings.Contains(string(out), "revision "+strings.TrimSpace(string(head))) {
			t.Errorf("the installed gatewayd version does not name the revision %s:\n%s", head, out)
		}
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/gatewayd@.service"))
	if err != nil {
		t.Fatal(err)
	}
	execs := regexp.MustCompile(`(?m)^Exec[A-Za-z]*=(\S+)`).FindAllSubmatch(unit, -1)
	if len(execs) < 3 {
		t.Errorf("the unit has %d Exec lines, want ExecStartPre, ExecStart and ExecReload", len(execs))
	}
	for _, m := range execs {
		if got, want := string(m[1]), filepath.Join(prefix, "sbin/gatewayd"); got != want {
			t.Errorf("the unit runs %s; the binary is installed as %s", got, want)
		}
	}
	sameContent(t, gunzip(t, filepath.Join(root, prefix, "share/man/man8/gatewayd.8.gz")), "../../docs/man/gatewayd.8")
	sameContent(t, gunzip(t, filepath.Join(root, prefix, "share/man/man5/gateway.toml.5.gz")), "../../docs/man/gateway.toml.5")
	completion, err := os.ReadFile(filepath.Join(root, prefix, "share/bash-completion/completions/gatewayd"))
	if err != nil {
		t.Fatal(err)
	}
	sameContent(t, completion, completionScript)
	conf, err := os.ReadFile(filepath.Join(root, "etc/gatewayd/gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	sameContent(t, conf, "../../etc/gateway.toml")
	if m := mode(t, filepath.Join(root, "var/lib/gatewayd")); m != 0o700 {
		t.Errorf("the state directory has mode %v, want 0700", m)
	}
}

// TestMakeInstall installs into a DESTDIR under another PREFIX, checks the
// tree, then installs again over an edited config, which must stay.
func TestMakeInstall(t *testing.T) {
	requirePackaging(t, "make", "gzip", "install")
	dir := t.TempDir()
	root, out := filepath.Join(dir, "root"), filepath.Join(dir, "out")
	makeIn(t, "install", "DESTDIR="+root, "PREFIX=/usr/local", "OUT="+out)
	checkTree(t, root, "/usr/local")

	conf := filepath.Join(root, "etc/gatewayd/gateway.toml")
	if err := os.WriteFile(conf, []byte("# edited by the admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if log := makeIn(t, "install", "DESTDIR="+root, "PREFIX=/usr/local", "OUT="+out); !strings.Contains(log, "keeping the existing") {
		t.Errorf("a second make install does not say it keeps the config:\n%s", log)
	}
	if b, _ := os.ReadFile(conf); string(b) != "# edited by the admin\n" {
		t.Errorf("a second make install replaced the edited config with:\n%s", b)
	}
}

// TestMakeDeb builds the package and inspects it: the files make install
// ships plus the package's own, the metadata, maintainer scripts that
// neither enable nor start the unit, and (in make deb) lintian without error;
// then the unit it ships, with systemd-analyze.
func TestMakeDeb(t *testing.T) {
	requirePackaging(t, "make", "gzip", "install", "dpkg-deb", "lintian", "systemd-analyze")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	log := makeIn(t, "deb", "OUT="+out)
	if !strings.Contains(log, "lintian ") {
		t.Errorf("make deb did not run lintian:\n%s", log)
	}
	version := releaseVersion(t)
	debs, _ := filepath.Glob(filepath.Join(out, "gatewayd_"+version+"_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %q, want one gatewayd_%s_ARCH.deb", debs, version)
	}
	deb := debs[0]

	root := filepath.Join(dir, "extracted")
	if b, err := exec.Command("dpkg-deb", "-R", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -R: %v\n%s", err, b)
	}
	checkTree(t, root, "/usr")
	listing, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		f := strings.Fields(line)
		if name := f[len(f)-1]; !strings.HasSuffix(name, "/") {
			files = append(files, strings.TrimPrefix(name, "."))
		}
	}
	slices.Sort(files)
	want := []string{
		"/etc/gatewayd/gateway.toml", "/lib/systemd/system/gatewayd@.service",
		"/usr/sbin/gatewayd", "/usr/share/bash-completion/completions/gatewayd",
		"/usr/share/doc/gatewayd/changelog.gz", "/usr/share/doc/gatewayd/copyright",
		"/usr/share/lintian/overrides/gatewayd",
		"/usr/share/man/man5/gateway.toml.5.gz", "/usr/share/man/man8/gatewayd.8.gz",
	}
	if !slices.Equal(files, want) {
		t.Errorf("the package ships\n%s\nwant\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	for field, value := range map[string]string{"Package": "gatewayd", "Version": version} {
		got, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
		if err != nil || strings.TrimSpace(string(got)) != value {
			t.Errorf("the package's %s is %q (%v), want %q", field, got, err, value)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "DEBIAN/conffiles")); strings.TrimSpace(string(b)) != "/etc/gatewayd/gateway.toml" {
		t.Errorf("conffiles is %q, want /etc/gatewayd/gateway.toml", b)
	}
	// try-restart (of instances already running, on upgrade) is allowed.
	enables := regexp.MustCompile(`(?m)^[^#]*(\benable\b|[^-]\bstart\b|[^-]\brestart\b)`)
	for _, script := range []string{"postinst", "prerm", "postrm", "preinst"} {
		b, err := os.ReadFile(filepath.Join(root, "DEBIAN", script))
		if os.IsNotExist(err) {
			continue
		}
		if m := enables.Find(b); m != nil {
			t.Errorf("DEBIAN/%s enables or starts the unit: %q", script, m)
		}
	}
	checkUnit(t, root)
}

// checkUnit runs systemd-analyze verify and security on the unit the package
// ships, in a root that has it, the binary, and the host's targets it names.
func checkUnit(t *testing.T, pkgRoot string) {
	help, _ := exec.Command("systemd-analyze", "--help").CombinedOutput()
	if !bytes.Contains(help, []byte("--offline")) || !bytes.Contains(help, []byte("--root")) {
		t.Fatalf("systemd-analyze has no --offline or --root (systemd 250 or newer needed)")
	}
	root := t.TempDir()
	units := filepath.Join(root, "lib/systemd/system")
	for _, d := range []string{units, filepath.Join(root, "usr/sbin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(pkgRoot, "lib/systemd/system/gatewayd@.service"), filepath.Join(units, "gatewayd@.service"), 0o644)
	copyFile(t, filepath.Join(pkgRoot, "usr/sbin/gatewayd"), filepath.Join(root, "usr/sbin/gatewayd"), 0o755)
	targets, _ := filepath.Glob("/lib/systemd/system/*.target")
	if len(targets) == 0 {
		t.Fatal("no systemd targets in /lib/systemd/system to verify the unit against")
	}
	for _, f := range targets {
		copyFile(t, f, filepath.Join(units, filepath.Base(f)), 0o644)
	}
	const instance = "gatewayd@eth1.service"
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, instance).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", instance, err, out)
	}
	// --threshold counts exposure in tenths: 40 is 4.0.
	out, err = exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=40", "--root="+root, instance).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level: %v\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if err != nil || score > 4.0 {
		t.Errorf("systemd-analyze security scores the unit %.1f (exit %v), want at most 4.0:\n%s", score, err, out)
	}

	// The bounding set is exactly what daemon.TestServesWithoutSysAdmin
	// proves the daemon serves with.
	unit, _ := os.ReadFile(filepath.Join(units, "gatewayd@.service"))
	caps := regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.*)$`).FindSubmatch(unit)
	if caps == nil {
		t.Fatal("the unit sets no CapabilityBoundingSet")
	}
	got := strings.Fields(string(caps[1]))
	slices.Sort(got)
	if want := []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}; !slices.Equal(got, want) {
		t.Errorf("the unit's CapabilityBoundingSet is %q, want exactly %q", got, want)
	}
}

func copyFile(t *testing.T, from, to string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, perm); err != nil {
		t.Fatal(err)
	}
}
