package daemon_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatewayd/lab"
)

// TestDemo runs `gatewayd demo` as `make demo` does, checks that each step
// showed what it narrates (the WAN lease from the ISP, the client's ping
// leaving with the WAN address, masquerade out of the WAN port, the status
// page's address and a few metric lines from the client), and that it ends
// cleanly and leaves no namespace behind.
func TestDemo(t *testing.T) {
	lab.RequireTools(t, "dnsmasq", "udhcpc", "dig", "tcpdump")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	raw, err := exec.CommandContext(ctx, bin, "demo").CombinedOutput()
	out := string(raw)
	if err != nil {
		t.Fatalf("gatewayd demo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`no namespace with prefix (\S+) is left`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("demo did not report its cleanup:\n%s", out)
	}
	left, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(left), m[1]+"-") {
		t.Errorf("namespaces left behind:\n%s", left)
	}

	lease := regexp.MustCompile(`leased (100\.64\.0\.\d+)/24 from 100\.64\.0\.1, gateway 100\.64\.0\.1`).FindStringSubmatch(out)
	if lease == nil {
		t.Fatalf("the demo shows no WAN lease from the ISP:\n%s", out)
	}
	wan := lease[1]
	for _, want := range []struct{ what, re string }{
		{"the default route out of the WAN port in status", `(?m)^   router: on eth1, upstream 100\.64\.0\.1, forwarding on\n(     .*\n)*?     route\s+default via 100\.64\.0\.1 dev eth0$`},
		{"the WAN address on eth0", `inet ` + regexp.QuoteMeta(wan) + `/24 `},
		{"the client's ping leaving with the WAN address, seen at the ISP", `IP ` + regexp.QuoteMeta(wan) + ` > 203\.0\.113\.1: ICMP echo request`},
		{"masquerade out of the WAN port", `oifname "eth0" .*masquerade`},
		{"the status page's address", `http://192\.0\.2\.1:9253/`},
		{"the page answering the client", `200 OK, \d+ bytes`},
		{"the client's lease in the metrics", `(?m)^   gatewayd_dhcp_leases\{state="active"\} 1$`},
		{"the generation after the reload in the metrics", `(?m)^   gatewayd_config_generation 2$`},
		{"the local answers in the metrics", `(?m)^   gatewayd_dns_queries_total\{stage="local"\} [1-9]`},
		{"the outside name resolved through the ISP", `(?m)^   203\.0\.113\.80$`},
	} {
		if !regexp.MustCompile(want.re).MatchString(out) {
			t.Errorf("the demo does not show %s (%s)", want.what, want.re)
		}
	}
	if t.Failed() {
		t.Logf("the demo's output:\n%s", out)
	}
}
