package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[gateway]\ninterface = \"eth1\"\n[[alias]]\nname = \"x\"\naddress = \"192.0.2.1/33\"\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{nil, 2, "usage: gatewayd"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"check", "--config", "../../etc/gateway.toml"}, 0, "ok (4 aliases"},
		{[]string{"check", "--config", bad}, 1, "bad.toml:5:1: alias[0].address"},
		{[]string{"check", "../../etc/gateway.toml"}, 2, `unexpected argument "../../etc/gateway.toml"`},
		{[]string{"check", "--config", "/nonexistent.toml"}, 1, "reading config"},
		{[]string{"leases", "frob", "--config", "../../etc/gateway.toml"}, 2, `unknown leases command "frob"`},
		{[]string{"leases", "delete", "nobody", "--config", "../../etc/gateway.toml"}, 2, `"nobody" is neither an IPv4 address nor a MAC`},
		{[]string{"leases", "delete", "--config", "../../etc/gateway.toml"}, 2, "usage: gatewayd leases delete ADDR|MAC"},
		{[]string{"check", "--config", "../../etc/gateway.toml", "--interface", "eth1"}, 0, "ok (4 aliases"},
		{[]string{"check", "--config", "../../etc/gateway.toml", "--interface", "eth2"}, 1, `[gateway] interface is "eth1", not "eth2": start gatewayd@eth1`},
		{[]string{"status", "--wait", "1s"}, 2, "flag provided but not defined: -wait\nusage: gatewayd status [--config FILE] [--json]"},
		{[]string{"help", "frob"}, 2, `no command "frob"`},
		{[]string{"help"}, 0, "usage: gatewayd COMMAND"},
		{[]string{"--help"}, 0, "usage: gatewayd COMMAND"},
		{[]string{"version"}, 0, "gatewayd dev\n"},
		{[]string{"--version"}, 0, "gatewayd dev\n"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		all := out.String() + errOut.String()
		if code != tc.code || !strings.Contains(all, tc.out) {
			t.Errorf("gatewayd %s: exit %d, want %d; output:\n%s\nwant it to contain %q", strings.Join(tc.args, " "), code, tc.code, all, tc.out)
		}
	}
}
