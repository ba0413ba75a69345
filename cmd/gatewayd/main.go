// Command gatewayd is the gateway appliance controller's CLI: the daemon (run)
// and the commands that check, plan, reload and inspect it. It holds no logic
// of its own: each command calls the package that owns the work.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gatewayd/config"
	"gatewayd/daemon"
)

const usage = `usage: gatewayd <command> [--config FILE] [flags]

commands:
  run       the daemon, in the foreground (SIGHUP reloads)
  check     validate the config file; no root needed
  plan      show what a reload would change
  reload    apply the config file to the running daemon
  status    aliases, roles, zones and counters [--json]
  leases    the DHCP leases [--json]; leases export [FILE]; leases import FILE
  purge     remove every address, route and firewall table gatewayd owns
  demo      build a namespace lab on this machine and show the whole job
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", config.DefaultPath, "the config file")
	asJSON := fs.Bool("json", false, "print JSON")
	wait := fs.Duration("wait", 0, "reload: how long to wait for another host to release an address")
	keep := fs.Bool("keep", false, "demo: keep the lab running until interrupted")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(positional) > 0 && cmd != "leases" {
		fmt.Fprintf(stderr, "gatewayd %s: unexpected argument %q (the config file is given with --config FILE)\n", cmd, positional[0])
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "run":
		stop() // the daemon handles its own signals
		err = daemon.Run(context.Background(), *path, stderr)
	case "check":
		err = check(*path, stdout)
	case "plan":
		err = plan(ctx, *path, stdout)
	case "reload":
		err = reload(ctx, *path, *wait, stdout)
	case "status":
		err = status(ctx, *path, *asJSON, stdout)
	case "leases":
		err = leases(ctx, *path, positional, *asJSON, stdout)
	case "purge":
		err = daemon.Purge(ctx, *path, stdout)
	case "demo":
		err = demo(ctx, *keep, stdout)
	default:
		fmt.Fprintf(stderr, "gatewayd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatewayd %s: %v\n", cmd, err)
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

func check(path string, out io.Writer) error {
	c, err := config.Load(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: ok (%d aliases, %d held by %s, %d zones)\n", path, len(c.Aliases), len(c.Held()), c.Gateway.Host, len(c.Zones))
	return nil
}

// request calls the daemon that the config at path names. A file broken by
// an edit in progress still finds the socket (only [gateway] control_socket
// is read then), so status and leases keep working and a reload is refused
// by the daemon itself with the precise error.
func request(ctx context.Context, path string, req daemon.Request, timeout time.Duration) (*daemon.Response, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	socket, parseErr := config.ControlSocket(path, text)
	if socket == "" {
		return nil, parseErr
	}
	if req.Op == "reload" || req.Op == "plan" {
		req.Path, req.Config = path, string(text)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := daemon.Call(ctx, socket, req)
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
		fmt.Fprintf(out, "# gatewayd is not running; starting it would apply:\n")
		for _, s := range daemon.PlanFromScratch(c) {
			fmt.Fprintln(out, s)
		}
		return nil
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
	for _, s := range steps {
		fmt.Fprintln(out, s)
	}
}

func reload(ctx context.Context, path string, wait time.Duration, out io.Writer) error {
	deadline := time.Now().Add(wait)
	for {
		resp, err := request(ctx, path, daemon.Request{Op: "reload"}, 5*time.Minute)
		if err == nil {
			printSteps(out, resp.Changes, "no changes")
			return nil
		}
		if resp == nil || wait <= 0 || time.Now().After(deadline) || !daemon.IsHeldElsewhere(resp.Error) {
			return err
		}
		fmt.Fprintf(out, "waiting for the old host to release the address…\n")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func status(ctx context.Context, path string, asJSON bool, out io.Writer) error {
	resp, err := request(ctx, path, daemon.Request{Op: "status"}, 10*time.Second)
	if err != nil {
		return err
	}
	if asJSON {
		return indentJSON(out, resp.Data)
	}
	var st daemon.Status
	if err := json.Unmarshal(resp.Data, &st); err != nil {
		return fmt.Errorf("reading status: %w", err)
	}
	daemon.WriteStatus(out, st, resp.Data)
	return nil
}

func indentJSON(out io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
