package dhcp

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gatewayd/lab"
)

// TestRealClientsTakeLargeReplies runs udhcpc, dhclient and dhcpcd against
// pools whose options do not fit in 576 bytes: each gets a lease, and no
// reply on the wire is larger than the client's option 57 (576 without
// one). A small custom option nobody asks for is never sent.
func TestRealClientsTakeLargeReplies(t *testing.T) {
	lab.RequireTools(t, "udhcpc", "dhclient", "dhcpcd", "tcpdump")
	unasked := Option{Code: 250, Value: []byte("unasked")}
	configs := []struct {
		name string
		edit func(*Config)
	}{
		{"two 255-byte options", func(c *Config) {
			c.Pools[0].Options = []Option{big(224, 255, true), big(225, 255, true), unasked}
		}},
		{"four 255-byte options and 40 routes", func(c *Config) {
			c.Pools[0].Options = []Option{big(224, 255, true), big(225, 255, true), big(226, 255, true), big(227, 255, true), unasked}
			c.Pools[0].Routes = manyRoutes(40)
		}},
	}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			n := newTestNet(t)
			n.cfg = netConfig(cfg.edit)
			n.set(n.cfg)
			for i, cl := range []struct {
				name string
				run  func(t *testing.T, ns *lab.Namespace, dir, env string)
				ip   string // the variable of the hook's environment with the address
			}{
				{"udhcpc", func(t *testing.T, ns *lab.Namespace, dir, env string) {
					ns.MustRun(t, "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", clientScript(t, dir, env), "-t", "5", "-T", "1", "-O", "staticroutes")
				}, "ip"},
				{"dhclient", func(t *testing.T, ns *lab.Namespace, dir, env string) {
					conf := filepath.Join(dir, "dhclient.conf")
					os.WriteFile(conf, []byte("option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n"+
						"request subnet-mask, routers, domain-name, domain-name-servers, dhcp-lease-time, rfc3442-classless-static-routes;\n"), 0o644)
					ns.MustRun(t, "dhclient", "-4", "-1", "-v", "-cf", conf, "-sf", clientScript(t, dir, env),
						"-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "eth0")
				}, "new_ip_address"},
				{"dhcpcd", func(t *testing.T, ns *lab.Namespace, dir, env string) {
					runDhcpcd(t, ns, "-A", "-c", clientScript(t, dir, env), "eth0")
				}, "new_ip_address"},
			} {
				t.Run(cl.name, func(t *testing.T) {
					ns := n.client(cl.name, "02:00:00:00:07:0"+strconv.Itoa(i+1))
					dir := t.TempDir()
					env := filepath.Join(dir, "env")
					stop := capture(t, n.lab, ns, "-v", "-s", "0")
					cl.run(t, ns, dir, env)
					dump := stop()
					e := envOf(t, env, "bound|BOUND")
					if !inPool(e[cl.ip]) {
						t.Errorf("%s bound %q", cl.name, e[cl.ip])
					}
					limit, sizes := replySizes(t, dump)
					t.Logf("%s: option 57 %d, replies of %v bytes", cl.name, limit, sizes)
					if len(sizes) < 2 {
						t.Errorf("saw %d replies:\n%s", len(sizes), dump)
					}
					for _, s := range sizes {
						if s > limit {
							t.Errorf("a reply of %d bytes; %s takes %d:\n%s", s, cl.name, limit, dump)
						}
					}
					if _, ok := e["opt250"]; ok || strings.Contains(dump, "(250), length") {
						t.Errorf("an option nobody asked for reached %s", cl.name)
					}
				})
			}
		})
	}
}

var (
	ipLength = regexp.MustCompile(`proto UDP \(17\), length (\d+)\)`)
	msz      = regexp.MustCompile(`MSZ (?:Option )?\(?57\)?, length 2: (\d+)`)
)

// replySizes reads a tcpdump -v capture: the smallest option 57 the client
// sent (576 when it sent none) and the IP length of every reply from the
// DHCP alias.
func replySizes(t *testing.T, dump string) (limit int, sizes []int) {
	t.Helper()
	limit = 0
	var pkts []string
	for _, line := range strings.Split(dump, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			pkts = append(pkts, "")
		}
		if len(pkts) > 0 {
			pkts[len(pkts)-1] += line + "\n"
		}
	}
	for _, p := range pkts {
		m := ipLength.FindStringSubmatch(p)
		if m == nil {
			continue
		}
		if strings.Contains(p, "192.0.2.2.67 > ") {
			n, _ := strconv.Atoi(m[1])
			sizes = append(sizes, n)
			continue
		}
		if s := msz.FindStringSubmatch(p); s != nil {
			v, _ := strconv.Atoi(s[1])
			if limit == 0 || v < limit {
				limit = v
			}
		}
	}
	if limit < minMessage {
		limit = minMessage
	}
	return limit, sizes
}
