package dhcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatewayd/lab"
)

// childEnv, when set to "<config JSON file>,<state dir>", makes the test binary
// run a DHCP server instead of the tests: the crash test kills it with
// SIGKILL, the benchmark measures it. It prints "ready" once serving.
const childEnv = "GATEWAYD_DHCP_CHILD"

// compactEnv, when set to a number, is the child's compaction slack
// (storeOptions.compactSlack), so that its lease log compacts every few
// records; the child then keeps the count of its compactions in the file
// compactionsFile of its state directory.
const (
	compactEnv      = "GATEWAYD_DHCP_COMPACT"
	compactionsFile = "compactions"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	if spec := os.Getenv(diskChildEnv); spec != "" {
		os.Exit(runDiskChild(spec))
	}
	os.Exit(m.Run())
}

func runChild(spec string) int {
	cfgPath, stateDir, _ := strings.Cut(spec, ",")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := readConfig(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts := Options{StateDir: stateDir, Logger: log}
	if v := os.Getenv(compactEnv); v != "" {
		if opts.compactSlack, err = strconv.ParseInt(v, 10, 64); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	s, err := New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := s.Set(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if opts.compactSlack != 0 {
		go countCompactions(s, filepath.Join(stateDir, compactionsFile))
	}
	if path := os.Getenv(profileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("ready")
	<-sig
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// countCompactions keeps the store's count of compactions in path, until
// the process ends (the crash test kills it).
func countCompactions(s *Server, path string) {
	last := uint64(0)
	for {
		if n := s.Status().Store.Compactions; n != last {
			last = n
			tmp := path + ".tmp"
			if os.WriteFile(tmp, []byte(strconv.FormatUint(n, 10)), 0o644) == nil {
				os.Rename(tmp, path)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeConfig writes the child's Config as JSON.
func writeConfig(path string, c *Config) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// readConfig reads the Config writeConfig wrote.
func readConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &c, nil
}

// startChild runs a server from the test binary in ns with the config and
// state directory, and waits until it serves.
func startChild(t testing.TB, ns *lab.Namespace, c *Config, stateDir string) *exec.Cmd {
	t.Helper()
	return startChildWith(t, ns, c, stateDir, []string{os.Args[0], "-test.run=^$"}, nil)
}

// startChildPinned is startChild on the benchmark's server core, with env
// added to the child's environment.
func startChildPinned(t testing.TB, ns *lab.Namespace, c *Config, stateDir string, env []string) *exec.Cmd {
	t.Helper()
	return startChildWith(t, ns, c, stateDir, pinned(serverCPU, os.Args[0], "-test.run=^$"), env)
}

func startChildWith(t testing.TB, ns *lab.Namespace, c *Config, stateDir string, argv, env []string) *exec.Cmd {
	t.Helper()
	cfgPath := filepath.Join(stateDir, "dhcp.json")
	if err := writeConfig(cfgPath, c); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(context.Background(), argv...)
	cmd.Env = append(append(os.Environ(), env...), childEnv+"="+cfgPath+","+stateDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := ns.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("child said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("child server: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("child server not ready after 60 s")
	}
	return cmd
}

// TestConfigJSON: the child serves exactly the Config its parent wrote. JSON
// keeps every field as is: MACs and option values as base64, durations in
// nanoseconds.
func TestConfigJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dhcp.json")
	for _, want := range []*Config{testConfig(), benchConfig()} {
		if err := writeConfig(path, want); err != nil {
			t.Fatal(err)
		}
		got, err := readConfig(path)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("read back %+v, %v; want %+v", got, err, want)
		}
	}
}
