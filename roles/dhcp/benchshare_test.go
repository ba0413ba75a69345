package dhcp

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuShare confines the servers of a benchmark part to a share of one
// core through the kernel's cpu controller (cgroup v2 cpu.max, or v1
// cfs_quota_us), each server alone in the group while it runs. On a
// two-core machine the load generator has one core, and a server that
// answers faster than perfdhcp can ask is measured at perfdhcp's ceiling;
// with every server held to the same quarter of a core, the servers run
// out of CPU long before perfdhcp does, so the ladder compares them.
type cpuShare struct {
	dir     string // the group's directory
	percent int
}

// shareParent finds the cpu controller's hierarchy: v2 where the unified
// hierarchy offers "cpu", else the v1 cpu mount.
func shareParent() (dir string, v2 bool, ok bool) {
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if b, err := os.ReadFile(filepath.Join(d, "cgroup.controllers")); err == nil && slices.Contains(strings.Fields(string(b)), "cpu") {
			return d, true, true
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		return "/sys/fs/cgroup/cpu", false, true
	}
	return "", false, false
}

// newCPUShare makes a group holding its members to percent of one core,
// removed when the benchmark ends; nil when the machine has no cpu
// controller to use.
func newCPUShare(tb testing.TB, percent int) *cpuShare {
	parent, v2, ok := shareParent()
	if !ok {
		return nil
	}
	dir := filepath.Join(parent, fmt.Sprintf("gatewayd-bench-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Logf("no CPU share: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		// The members are stopped by now; a group with none left is removed.
		for range 50 {
			if os.Remove(dir) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	const period = 10000 // µs: short, so a server waits at most a few ms for its share
	quota := strconv.Itoa(period * percent / 100)
	var err error
	if v2 {
		err = os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(quota+" "+strconv.Itoa(period)), 0o644)
	} else {
		err = os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(period)), 0o644)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), []byte(quota), 0o644)
		}
	}
	if err != nil {
		tb.Logf("no CPU share: %v", err)
		return nil
	}
	return &cpuShare{dir: dir, percent: percent}
}

// add moves process pid, every thread of it, into the group.
func (c *cpuShare) add(pid int) error {
	return os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}
