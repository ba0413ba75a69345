package firewall

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"gatewayd/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, unified(splitLines(string(want)), splitLines(got)))
	}
}

func loadConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGoldenRenderings(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"seed", "../etc/gateway.toml"},
		{"nozones", "testdata/nozones.toml"},
		{"outside", "testdata/outside.toml"},
		{"many", "testdata/many.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name+".nft", Build(loadConfig(t, tc.config)).Render())
		})
	}
}

func TestGoldenManyZones(t *testing.T) {
	golden(t, "zones20.nft", Build(parseConfig(t, manyZones(20))).Render())
}
