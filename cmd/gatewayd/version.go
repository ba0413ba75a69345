package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is the release, set when building a release:
// go build -ldflags "-X main.version=1.2.0" (the Makefile's VERSION).
var version = "dev"

// buildRevision is the source revision the binary was built from, its
// commit time and whether the tree had uncommitted changes, as the Go
// toolchain recorded them (go build in a git checkout stamps them).
func buildRevision() (rev, at string, modified bool) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", "", false
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, at, modified
}

// writeVersion is `gatewayd version`.
func writeVersion(out io.Writer) {
	fmt.Fprintf(out, "gatewayd %s\n", version)
	rev, at, modified := buildRevision()
	switch {
	case rev == "":
		fmt.Fprintln(out, "revision unknown (not built from a git clone)")
	default:
		if modified {
			rev += " with uncommitted changes"
		}
		if at != "" {
			rev += ", committed " + at
		}
		fmt.Fprintf(out, "revision %s\n", rev)
	}
	fmt.Fprintf(out, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
