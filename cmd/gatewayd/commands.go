package main

import (
	"context"
	"flag"
	"io"
	"time"

	"gatewayd/config"
	"gatewayd/daemon"
)

// A command is one verb of the CLI: its synopsis, its help, the flags it
// takes (and only those) and the package call it makes.
type command struct {
	name string
	// args is what follows the flags in the synopsis; "" means the command
	// takes no arguments.
	args    string
	summary string // one line for the command list
	about   string // the paragraph `gatewayd help NAME` prints
	flags   func(fs *flag.FlagSet, o *options)
	run     func(ctx context.Context, o *options, args []string, out io.Writer) error
}

// options are the values the flags set, and the error stream.
type options struct {
	config  string
	json    bool
	wait    time.Duration
	confirm time.Duration
	keep    bool
	nic     string
	// acceptLeaseLoss is run's --accept-lease-loss.
	acceptLeaseLoss bool
	stderr          io.Writer
}

// A flag's usage names its argument in backquotes (flag.UnquoteUsage): the
// help and the synopsis show `--config FILE`.
func configFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.config, "config", config.DefaultPath, "read the config from `FILE`")
}

// commands is every command, in the order the help lists them.
var commands = []*command{
	{
		name: "run", summary: "the daemon, in the foreground (SIGHUP reloads)",
		about: "Runs the daemon in the foreground: brings the aliases up, installs the firewall and starts the roles the file gives this box, then serves until SIGTERM or SIGINT. SIGHUP reloads the file. It tells systemd when it is ready (Type=notify). SIGTERM stops the roles but leaves the aliases and the firewall, so a restart does not flap them; `gatewayd purge` removes them.",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			fs.BoolVar(&o.acceptLeaseLoss, "accept-lease-loss", false, "start even when the damaged lease log keeps fewer than half of its leases (the damaged file is kept aside)")
		},
		run: func(_ context.Context, o *options, _ []string, _ io.Writer) error {
			// The daemon handles its own signals.
			return daemon.Run(context.Background(), o.config, o.stderr, daemon.RunOptions{AcceptLeaseLoss: o.acceptLeaseLoss})
		},
	},
	{
		name: "check", summary: "validate the config file; no root needed",
		about: "Validates the config file and exits 0, or prints every problem as file:line:col: key: message and exits 1. Warnings (file:line:col: warning: ...) say what in a valid file is likely a mistake; they are printed and the exit status is still 0. It needs no root and touches nothing.",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			fs.StringVar(&o.nic, "interface", "", "also require [gateway] interface to be `NIC` (the unit gatewayd@NIC passes it)")
		},
		run: func(_ context.Context, o *options, _ []string, out io.Writer) error {
			return check(o.config, o.nic, out)
		},
	},
	{
		name: "plan", summary: "show what a reload would change",
		about: "Prints the file's warnings, then the steps a reload of it would take, as `ip addr`, `nft` and `sysctl` style lines. With the daemon stopped it prints what starting it would apply.",
		flags: configFlag,
		run: func(ctx context.Context, o *options, _ []string, out io.Writer) error {
			return plan(ctx, o.config, out)
		},
	},
	{
		name: "reload", summary: "apply the config file to the running daemon",
		about: "Asks the running daemon to apply the file and prints what changed; the file's warnings go to stderr first. A refused file changes nothing: the command prints the reason and exits 1. With --confirm the daemon returns to the previous config by itself after DURATION unless `gatewayd confirm` arrives first: the way to try a change that may cut your own session.",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			fs.DurationVar(&o.wait, "wait", 0, "retry for up to `DURATION` (e.g. 30s) while another host still holds an address this box claims")
			fs.DurationVar(&o.confirm, "confirm", 0, "undo the reload after `DURATION` (e.g. 5m) unless gatewayd confirm runs first")
		},
		run: func(ctx context.Context, o *options, _ []string, out io.Writer) error {
			return reload(ctx, o, out)
		},
	},
	{
		name: "confirm", summary: "keep the config a reload --confirm applied",
		about: "Tells the running daemon to keep the config the last `gatewayd reload --confirm` applied, so it does not return to the previous one. A plain reload confirms too. With nothing waiting for confirmation it says so and exits 1.",
		flags: configFlag,
		run: func(ctx context.Context, o *options, _ []string, out io.Writer) error {
			return confirm(ctx, o.config, out)
		},
	},
	{
		name: "status", summary: "aliases, roles, zones and their counters",
		about: "Shows the running daemon's aliases, roles and zones with their counters, in human units (1.2 MiB, 3.4 k). The control socket is root's only: run it as root.",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			fs.BoolVar(&o.json, "json", false, "print the status as JSON, counters as raw numbers")
		},
		run: func(ctx context.Context, o *options, _ []string, out io.Writer) error {
			return status(ctx, o.config, o.json, out)
		},
	},
	{
		name: "leases", args: "[list | export [FILE] | import FILE | delete ADDR|MAC]",
		summary: "the DHCP leases: list, export, import, delete",
		about:   "list (the default) prints the DHCP leases. export writes them as gatewayd JSON to FILE or stdout; import reads gatewayd JSON, a dnsmasq lease file or ISC dhcpd.leases; delete removes the lease of one address or every lease of one MAC. Each works with the daemon running (through it) or stopped (on the lease store, holding the state directory's lock).",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			fs.BoolVar(&o.json, "json", false, "list: print the leases as JSON")
		},
		run: func(ctx context.Context, o *options, args []string, out io.Writer) error {
			return leases(ctx, o.config, args, o.json, out)
		},
	},
	{
		name: "adopt", summary: "take over addresses already on the NIC that match an alias",
		about: "With the daemon stopped, records as gatewayd's the addresses already on the NIC that match an alias of the file exactly (address, prefix length and label), such as the eth1:0 stanzas of an old /etc/network/interfaces, so the daemon holds them instead of refusing them as someone else's. It changes nothing in the kernel. The alias key adopt = true does the same at every start.",
		flags: configFlag,
		run: func(ctx context.Context, o *options, _ []string, out io.Writer) error {
			return daemon.Adopt(ctx, o.config, out)
		},
	},
	{
		name: "purge", summary: "remove every address, route and firewall table gatewayd made",
		about: "With the daemon stopped, removes every address, route and sysctl change gatewayd made and its nftables table, and nothing else. Run it before removing gatewayd from a box.",
		flags: configFlag,
		run: func(ctx context.Context, o *options, _ []string, out io.Writer) error {
			return daemon.Purge(ctx, o.config, out)
		},
	},
	{
		name: "demo", summary: "build a namespace lab on this machine and show the whole job",
		about: "Builds a lab of network namespaces on this machine, runs this binary as the gateway in it and shows a client getting a lease, resolving names and being routed, then a reload. It touches nothing outside the namespaces it makes and removes them at the end. It needs root.",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.keep, "keep", false, "keep the lab running until interrupted")
		},
		run: func(ctx context.Context, o *options, _ []string, out io.Writer) error {
			return demo(ctx, o.keep, out)
		},
	},
	{
		name: "version", summary: "the release, the source revision and the Go version",
		about: "Prints the release version, the source revision and time it was built from, and the Go version. `gatewayd --version` is the same.",
		run: func(_ context.Context, _ *options, _ []string, out io.Writer) error {
			writeVersion(out)
			return nil
		},
	},
	{
		name: "help", args: "[COMMAND]", summary: "this list, or one command's usage and flags",
		about: "Prints the list of commands, or the usage and flags of one command. `gatewayd COMMAND --help` is the same.",
		// run is set by init: help reads the table it is part of.
	},
}

func init() {
	lookup("help").run = func(_ context.Context, _ *options, args []string, out io.Writer) error {
		return help(args, out)
	}
}

// lookup finds a command by name.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// flagSet is the command's own flag set; it prints nothing itself.
func (c *command) flagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.flags != nil {
		c.flags(fs, o)
	}
	return fs
}
