package dns

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"testing"
)

// benchServeEnv makes the test binary run a DNS server instead of the
// tests: BenchmarkPeers starts it that way, pinned to one core inside a lab
// namespace, so gatewayd's server is a process of its own like its peers.
const benchServeEnv = "GATEWAYD_DNS_BENCH_SERVE"

// benchProfileEnv names a file for the bench server's CPU profile.
const benchProfileEnv = "GATEWAYD_DNS_CPUPROFILE"

func TestMain(m *testing.M) {
	if path := os.Getenv(benchServeEnv); path != "" {
		if err := benchServe(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchServe runs a Server with the Config at path (JSON) until SIGTERM.
// The process is started inside the namespace it serves, so the role opens
// its sockets with the net package, as the daemon does.
func benchServe(path string) error {
	js, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c *Config
	if err := json.Unmarshal(js, &c); err != nil {
		return fmt.Errorf("reading the DNS config %s: %w", path, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := New(Options{Logger: log})
	if err := s.Set(context.Background(), c); err != nil {
		return err
	}
	if prof := os.Getenv(benchProfileEnv); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("serving")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return s.Close()
}
