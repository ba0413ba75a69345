// Command gatewayd is the gateway appliance controller's CLI: the daemon (run)
// and the commands that check, plan, reload and inspect it. It holds no logic
// of its own: each command calls the package that owns the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"gatewayd/config"
	"gatewayd/daemon"
)

func main() {
	daemon.Version = version
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command line: it returns the exit status (0 done, 1 the
// command failed, 2 the command line is wrong). Help and the version go to
// stdout; a bare `gatewayd` prints the command list on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		args = []string{"help"}
	case "-version", "--version":
		args = []string{"version"}
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "gatewayd: unknown command %q\n\n", args[0])
		writeUsage(stderr)
		return 2
	}
	o := &options{stderr: stderr}
	positional, err := parseInterspersed(cmd.flagSet(o), args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout, cmd)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "gatewayd %s: %v\nusage: %s\n", cmd.name, err, cmd.synopsis())
		return 2
	case len(positional) > 0 && cmd.args == "":
		fmt.Fprintf(stderr, "gatewayd %s: unexpected argument %q (the config file is given with --config FILE)\n", cmd.name, positional[0])
		return 2
	}
	ctx := context.Background()
	if cmd.name != "run" {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
	}
	if err := cmd.run(ctx, o, positional, stdout); err != nil {
		fmt.Fprintf(stderr, "gatewayd %s: %v\n", cmd.name, err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

// parseInterspersed parses flags wherever they stand among the arguments
// (`leases export FILE --config F`) and returns the other arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// check is `gatewayd check`; nic, when set, is the interface the file must
// name (the unit gatewayd@NIC refuses to start on a file for another NIC).
func check(path, nic string, out io.Writer) error {
	c, err := config.Load(path)
	if err != nil {
		return err
	}
	if nic != "" && c.Gateway.Interface != nic {
		return fmt.Errorf("%s: [gateway] interface is %q, not %q: start gatewayd@%s, or set interface = %q", path, c.Gateway.Interface, nic, c.Gateway.Interface, nic)
	}
	printWarnings(out, c.Warnings)
	fmt.Fprintf(out, "%s: ok (%d aliases, %d held by %s, %d zones)\n", path, len(c.Aliases), len(c.Held()), c.Gateway.Host, len(c.Zones))
	return nil
}

// printWarnings prints a valid file's warnings, one a line.
func printWarnings(out io.Writer, warnings []config.Warning) {
	for _, w := range warnings {
		fmt.Fprintln(out, w.String())
	}
}

// request calls the daemon that the config at path names. A file broken by
// an edit in progress still finds the socket (only [gateway] control_socket
// is read then), so status and leases keep working and a reload is refused
// by the daemon itself with the precise error.
func request(ctx context.Context, path string, req daemon.Request, timeout time.Duration) (*daemon.Response, error) {
	text, err := os.ReadFile(path)
	if errors.Is(err, os.ErrPermission) && os.Geteuid() != 0 {
		return nil, fmt.Errorf("reading config: %w: run this as root", err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	socket, parseErr := config.ControlSocket(path, text)
	if socket == "" {
		return nil, parseErr
	}
	switch req.Op {
	case "plan":
		req.Path, req.Config = path, string(text)
	case "reload":
		// The daemon's SIGHUP re-reads the file last applied from its own
		// working directory: it must get the path whole.
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("the config's absolute path: %w", err)
		}
		req.Path, req.Config = abs, string(text)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := daemon.Call(ctx, socket, req)
	if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("the control socket %s is root's only: run this as root", socket)
	}
	if err != nil {
		if parseErr != nil {
			return nil, parseErr
		}
		return nil, err
	}
	if !resp.OK {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

func plan(ctx context.Context, path string, out io.Writer) error {
	resp, err := request(ctx, path, daemon.Request{Op: "plan"}, time.Minute)
	if errors.Is(err, daemon.ErrNotRunning) {
		c, lerr := config.Load(path)
		if lerr != nil {
			return lerr
		}
		printWarnings(out, c.Warnings)
		fmt.Fprintf(out, "# gatewayd is not running; starting it would apply:\n")
		for _, s := range daemon.PlanFromScratch(c) {
			fmt.Fprintln(out, s)
		}
		return nil
	}
	if resp != nil {
		// The daemon parsed the file it was sent: its warnings are the ones.
		writeLines(out, resp.Warnings)
	}
	if err != nil {
		return err
	}
	printSteps(out, resp.Changes, "no changes")
	return nil
}

func printSteps(out io.Writer, steps []string, none string) {
	if len(steps) == 0 {
		fmt.Fprintln(out, none)
	}
	writeLines(out, steps)
}

// reload is `gatewayd reload [--wait D] [--confirm D]`: the daemon's
// warnings on stderr, then what changed (the daemon's last line says how
// to confirm a --confirm reload).
func reload(ctx context.Context, o *options, out io.Writer) error {
	if o.wait < 0 || o.confirm < 0 {
		return usageError{"--wait and --confirm take a duration such as 30s or 5m, not a negative one"}
	}
	req := daemon.Request{Op: "reload", Confirm: o.confirm}
	deadline := time.Now().Add(o.wait)
	for {
		resp, err := request(ctx, o.config, req, 5*time.Minute)
		retry := err != nil && resp != nil && o.wait > 0 && time.Now().Before(deadline) && daemon.IsHeldElsewhere(resp.Error)
		if !retry {
			if resp != nil {
				writeLines(o.stderr, resp.Warnings)
			}
			if err != nil {
				return err
			}
			printSteps(out, resp.Changes, "no changes")
			return nil
		}
		fmt.Fprintf(out, "waiting for the old host to release the address…\n")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func writeLines(out io.Writer, ss []string) {
	for _, s := range ss {
		fmt.Fprintln(out, s)
	}
}

// confirm is `gatewayd confirm`: the daemon keeps the config a --confirm
// reload applied.
func confirm(ctx context.Context, path string, out io.Writer) error {
	if _, err := request(ctx, path, daemon.Request{Op: "confirm"}, 30*time.Second); err != nil {
		return err
	}
	fmt.Fprintln(out, "confirmed")
	return nil
}
