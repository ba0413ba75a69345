package main

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const completionScript = "../../contrib/gatewayd.bash-completion"

// complete runs the bash completion for the words, the last being the one
// completed, and returns what it offers, sorted.
func complete(t *testing.T, words ...string) []string {
	t.Helper()
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = strconv.Quote(w)
	}
	script := "source " + completionScript + "\n" +
		"COMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
		"COMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n" +
		"_gatewayd\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	out, err := exec.Command("bash", "--norc", "--noprofile", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	return got
}

// TestBashCompletionKnowsEveryCommandAndFlag: the completion offers every
// command, and for each exactly the flags it defines.
func TestBashCompletionKnowsEveryCommandAndFlag(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	want := []string{"--help", "--version"}
	for _, c := range commands {
		want = append(want, c.name)
	}
	slices.Sort(want)
	if got := complete(t, "gatewayd", ""); !slices.Equal(got, want) {
		t.Errorf("gatewayd <TAB> offers %q, want %q", got, want)
	}
	for _, c := range commands {
		want := []string{"--help"}
		for _, f := range c.flagNames() {
			want = append(want, "--"+f)
		}
		slices.Sort(want)
		if got := complete(t, "gatewayd", c.name, "--"); !slices.Equal(got, want) {
			t.Errorf("gatewayd %s --<TAB> offers %q, want %q", c.name, got, want)
		}
	}
	if got := complete(t, "gatewayd", "leases", "--config", "f", ""); !slices.Equal(got, []string{"delete", "export", "import", "list"}) {
		t.Errorf("gatewayd leases --config f <TAB> offers %q", got)
	}
	if got := complete(t, "gatewayd", "reload", "--confirm", ""); len(got) > 0 {
		t.Errorf("gatewayd reload --confirm <TAB> offers %q, want nothing (a duration)", got)
	}
	if got := complete(t, "gatewayd", "help", "st"); !slices.Equal(got, []string{"status"}) {
		t.Errorf("gatewayd help st<TAB> offers %q", got)
	}
}
