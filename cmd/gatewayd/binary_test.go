package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBinaryLinksNoTestMachinery: the production binary does not link the
// testing package (the demo's lab is linked, its test helpers take lab.TB).
func TestBinaryLinksNoTestMachinery(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "gatewayd/cmd/gatewayd").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasPrefix(pkg, "testing/") {
			t.Errorf("gatewayd links %s", pkg)
		}
	}
}

// namespaceSwitching is what only the lab may do: enter another network
// namespace, or look at the threads' namespaces.
var namespaceSwitching = regexp.MustCompile(`unix\.Setns|netns\.Set\b|netns\.Get|/proc/self/task|/proc/thread-self/ns|CLONE_NEWNET|NewHandleAt|NetNS:`)

// TestNoNamespaceSwitchingOutsideLab: production code lives in the one
// network namespace it was started in; namespaces are the lab's business.
func TestNoNamespaceSwitchingOutsideLab(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "gatewayd/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dir := range strings.Fields(string(out)) {
		if filepath.Base(dir) == "lab" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for n := 1; sc.Scan(); n++ {
				line := sc.Text()
				if strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue
				}
				if m := namespaceSwitching.FindString(line); m != "" {
					t.Errorf("%s:%d: %s (namespace handling belongs to package lab)", f, n, m)
				}
			}
		}
	}
}
