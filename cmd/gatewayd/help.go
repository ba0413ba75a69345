package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// writeUsage is the command list: `gatewayd help`, and on stderr a bare `gatewayd`.
func writeUsage(out io.Writer) {
	fmt.Fprint(out, "usage: gatewayd COMMAND [flags]\n\ncommands:\n")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(out, "\n`gatewayd help COMMAND` or `gatewayd COMMAND --help` prints a command's flags;\n"+
		"`gatewayd --version` the version. Manual: gatewayd(8), gateway.toml(5).\n")
}

// synopsis is the command's usage line: its name, each flag, its arguments.
func (c *command) synopsis() string {
	parts := []string{"gatewayd", c.name}
	c.flagSet(&options{}).VisitAll(func(f *flag.Flag) {
		arg, _ := flag.UnquoteUsage(f)
		parts = append(parts, "["+strings.TrimSpace("--"+f.Name+" "+arg)+"]")
	})
	if c.args != "" {
		parts = append(parts, c.args)
	}
	return strings.Join(parts, " ")
}

// writeHelp is one command's usage, its paragraph and its flags.
func writeHelp(out io.Writer, c *command) {
	fmt.Fprintf(out, "usage: %s\n\n%s\n\nflags:\n", c.synopsis(), wrap(c.about, 78))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	c.flagSet(&options{}).VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0s" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace("--"+f.Name+" "+arg), usage)
	})
	fmt.Fprintf(tw, "  --help\tprint this help\n")
	tw.Flush()
}

// help is `gatewayd help [COMMAND]`.
func help(args []string, out io.Writer) error {
	switch len(args) {
	case 0:
		writeUsage(out)
		return nil
	case 1:
		if c := lookup(args[0]); c != nil {
			writeHelp(out, c)
			return nil
		}
		return usageError{fmt.Sprintf("no command %q; the commands are: %s", args[0], commandNames())}
	}
	return usageError{"help takes one command name"}
}

func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// wrap breaks text into lines of at most width bytes at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		if n > 0 && n+1+len(w) > width {
			b.WriteByte('\n')
			n = 0
		} else if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// usageError is a command line the CLI cannot run: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
