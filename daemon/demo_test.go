package daemon_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestDemo runs `gatewayd demo` as `make demo` does and checks that it ends
// cleanly and leaves no namespace behind.
func TestDemo(t *testing.T) {
	lab.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("gatewayd demo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`no namespace with prefix (\S+) is left`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("demo did not report its cleanup:\n%s", out)
	}
	left, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(left), string(m[1])+"-") {
		t.Errorf("namespaces left behind:\n%s", left)
	}
}
