package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden pins the whole error text for each refused file in testdata: every
// problem, sorted by line, one a line.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.toml: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file)
			if err == nil {
				t.Fatalf("%s loaded without error", file)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -run TestGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("error text for %s differs from %s:\ngot:\n%s\nwant:\n%s", file, golden, got, want)
			}
		})
	}
}

// TestGoldenWarnings pins the warnings of each valid file in
// testdata/warnings, rendered one a line.
func TestGoldenWarnings(t *testing.T) {
	files, err := filepath.Glob("testdata/warnings/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/warnings/*.toml: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, w := range c.Warnings {
				b.WriteString(w.String() + "\n")
			}
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -run TestGolden -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("warnings for %s differ from %s:\ngot:\n%s\nwant:\n%s", file, golden, b.String(), want)
			}
		})
	}
}
