package main

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// manSections reads a man page's .SS subsections under the .SH named sh:
// each subsection's title and its lines.
func manSections(t *testing.T, file, sh string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	in, cur := false, ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ".SH "):
			in, cur = strings.Trim(strings.TrimPrefix(line, ".SH "), `"`) == sh, ""
		case in && strings.HasPrefix(line, ".SS "):
			cur = strings.Trim(strings.TrimPrefix(line, ".SS "), `"`)
			if _, dup := out[cur]; dup {
				t.Errorf("%s: .SS %s appears twice", file, cur)
			}
			out[cur] = nil
		case in && cur != "":
			out[cur] = append(out[cur], line)
		}
	}
	return out
}

var manFlag = regexp.MustCompile(`^\.BI? \\-\\-([a-z-]+)`)

// documentedFlags are the flags a section documents: a .TP whose tag line
// is .B or .BI \-\-name.
func documentedFlags(lines []string) []string {
	var flags []string
	for i := 1; i < len(lines); i++ {
		if lines[i-1] != ".TP" {
			continue
		}
		if m := manFlag.FindStringSubmatch(lines[i]); m != nil {
			flags = append(flags, m[1])
		}
	}
	slices.Sort(flags)
	return flags
}

func (c *command) flagNames() []string {
	var names []string
	c.flagSet(&options{}).VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// TestManPageDocumentsEveryCommandAndFlag: gatewayd(8) has a section for
// every command, and documents exactly the flags that command defines.
func TestManPageDocumentsEveryCommandAndFlag(t *testing.T) {
	const page = "../../docs/man/gatewayd.8"
	sections := manSections(t, page, "COMMANDS")
	for _, c := range commands {
		lines, ok := sections[c.name]
		if !ok {
			t.Errorf("%s: no .SS %s for the command %s", page, c.name, c.name)
			continue
		}
		if got, want := documentedFlags(lines), c.flagNames(); !slices.Equal(got, want) {
			t.Errorf("%s: .SS %s documents the flags %q; the command defines %q", page, c.name, got, want)
		}
		if !strings.Contains(strings.Join(lines, "\n"), ".B gatewayd "+c.name) {
			t.Errorf("%s: .SS %s has no synopsis line .B gatewayd %s", page, c.name, c.name)
		}
	}
	for name := range sections {
		if lookup(name) == nil {
			t.Errorf("%s: .SS %s documents a command gatewayd does not have", page, name)
		}
	}
}

// TestHelpShowsOnlyItsOwnFlags: `help CMD` and `CMD --help` print the same
// usage on stdout, exit 0, and list that command's flags and no other's.
func TestHelpShowsOnlyItsOwnFlags(t *testing.T) {
	all := map[string]bool{}
	for _, c := range commands {
		for _, f := range c.flagNames() {
			all[f] = true
		}
	}
	for _, c := range commands {
		var out1, err1, out2, err2 bytes.Buffer
		if code := run([]string{"help", c.name}, &out1, &err1); code != 0 || err1.Len() > 0 {
			t.Errorf("gatewayd help %s: exit %d, stderr %q", c.name, code, err1.String())
		}
		if code := run([]string{c.name, "--help"}, &out2, &err2); code != 0 || err2.Len() > 0 {
			t.Errorf("gatewayd %s --help: exit %d, stderr %q", c.name, code, err2.String())
		}
		if out1.String() != out2.String() {
			t.Errorf("gatewayd help %s and gatewayd %s --help differ:\n%s\n---\n%s", c.name, c.name, out1.String(), out2.String())
		}
		text := out1.String()
		if !strings.HasPrefix(text, "usage: gatewayd "+c.name) {
			t.Errorf("gatewayd help %s does not start with its usage:\n%s", c.name, text)
		}
		own := c.flagNames()
		for f := range all {
			has := regexp.MustCompile(`(?m)^  --` + f + `\b`).MatchString(text)
			if want := slices.Contains(own, f); has != want {
				t.Errorf("gatewayd help %s: lists --%s: %v, want %v\n%s", c.name, f, has, want, text)
			}
		}
	}
}

// TestManPagesRenderCleanly: groff finds nothing to warn about in either page.
func TestManPagesRenderCleanly(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("no groff")
	}
	for _, page := range []string{"../../docs/man/gatewayd.8", "../../docs/man/gateway.toml.5"} {
		out, err := exec.Command("groff", "-man", "-ww", "-z", page).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("groff -man -ww %s: %v\n%s", page, err, out)
		}
	}
}
