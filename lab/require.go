package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Require skips the test, saying why, unless it can build labs: it needs
// root and the ip command. When the environment variable CI is set the test
// fails instead, so CI never passes by skipping its kernel tests.
func Require(t TB) {
	t.Helper()
	decide(t, missing(os.Geteuid(), exec.LookPath, []string{"ip"}), os.Getenv("CI") != "")
}

// RequireTools is Require for tests that also run the named programs
// (dnsmasq, udhcpc, ...): it skips, or fails in CI, when one is missing.
func RequireTools(t TB, tools ...string) {
	t.Helper()
	decide(t, missing(os.Geteuid(), exec.LookPath, append([]string{"ip"}, tools...)), os.Getenv("CI") != "")
}

// missing says what stops lab tests from running here, or "" when nothing.
func missing(euid int, lookPath func(string) (string, error), tools []string) string {
	var why []string
	if euid != 0 {
		why = append(why, "network namespaces need root")
	}
	var absent []string
	for _, tool := range tools {
		if _, err := lookPath(tool); err != nil {
			absent = append(absent, tool)
		}
	}
	if len(absent) > 0 {
		why = append(why, fmt.Sprintf("%s not installed (make deps installs them)", strings.Join(absent, ", ")))
	}
	return strings.Join(why, "; ")
}

// decide skips or, in CI, fails the test when reason is not empty.
func decide(t TB, reason string, ci bool) {
	t.Helper()
	switch {
	case reason == "":
	case ci:
		t.Fatalf("lab: %s (CI is set: kernel tests must run, not skip)", reason)
	default:
		t.Skipf("lab: %s", reason)
	}
}

// Eventually calls fn until it returns nil, and fails the test with fn's
// last error if that does not happen within timeout.
func Eventually(t TB, timeout time.Duration, fn func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := Poll(ctx, fn); err != nil {
		t.Fatalf("condition not met within %v: %v", timeout, err)
	}
}

// Poll calls fn until it returns nil or ctx ends, backing off from 10 ms to
// 250 ms between calls. It calls fn at least once, and on timeout returns
// fn's last error.
func Poll(ctx context.Context, fn func() error) error {
	wait := 10 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%w; last try: %w", ctx.Err(), err)
		case <-timer.C:
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}
