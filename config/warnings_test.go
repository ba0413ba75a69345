package config

import (
	"strings"
	"testing"
)

// TestSiteWarnings: each site warning fires where the goldens in
// testdata/warnings show it, and not where the same setting is fine.
func TestSiteWarnings(t *testing.T) {
	const small = "[gateway]\ninterface = \"eth1\"\nhost = \"gw1\"\n\n[[alias]]\nname = \"router\"\naddress = \"192.168.1.1/24\"\n"
	const lan = "\n[zone.lan]\nsubnets = [\"192.168.1.0/24\"]\n"
	for _, tc := range []struct {
		name, text string
		want       string // key and message start of the one warning; "" for none
	}{
		{"no zone, no role", small, "gateway: the file has no zone, so no host reaches this box: "},
		{"no zone, DNS only", small + "\n[dns]\nalias = \"router\"\n", "gateway: the file has no zone, so DNS serves nobody: "},
		{"role a zone serves", small + "\n[dns]\nalias = \"router\"\n" + lan + "allow = [\"dns\"]\n", ""},
		{"router without upstream", small + "\n[router]\nalias = \"router\"\n" + lan, ""},
		{"WAN port", small + "\n[upstream]\ninterface = \"eth0\"\ndhcp = true\n\n[router]\nalias = \"router\"\n" + lan, ""},
		{"metrics on loopback", strings.Replace(small, "host = \"gw1\"\n", "host = \"gw1\"\nmetrics = \"127.0.0.1:9253\"\n", 1) + lan, ""},
		{"metrics a zone may reach", strings.Replace(small, "host = \"gw1\"\n", "host = \"gw1\"\nmetrics = \"192.168.1.1:9253\"\n", 1) + lan + "allow = [\"web\"]\n", ""},
		{"metrics for management", strings.Replace(small, "host = \"gw1\"\n", "host = \"gw1\"\nmetrics = \"192.168.1.1:9253\"\nmanagement = [\"ssh\", \"web\"]\n", 1) + lan, ""},
		{"metrics nobody reaches", strings.Replace(small, "host = \"gw1\"\n", "host = \"gw1\"\nmetrics = \"192.168.1.1:9253\"\n", 1) + lan,
			`gateway.metrics: metrics listens on 192.168.1.1:9253, but no zone allows "web"`},
		{"service allowed", small + "\n[service.printer]\nports = [\"tcp/631\"]\n" + lan + "allow = [\"printer\"]\n", ""},
		{"service no zone allows", small + "\n[service.vnc]\nports = [\"tcp/5900\"]\n" + lan,
			`service.vnc: service "vnc" is opened to no zone`},
		{"service named for management", strings.Replace(small, "host = \"gw1\"\n", "host = \"gw1\"\nmanagement = [\"vnc\"]\n", 1) + "\n[service.vnc]\nports = [\"tcp/5900\"]\n" + lan, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.text)
			var got []string
			for _, w := range c.Warnings {
				got = append(got, w.Key+": "+w.Msg)
			}
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("warnings %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want)):
				t.Errorf("warnings %q, want one starting %q", got, tc.want)
			}
		})
	}
}
