package lab

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

//go:embed demo.toml
var demoConfig string

// DemoConfig is the embedded demo site with its files under dir.
func DemoConfig(dir string) string { return strings.ReplaceAll(demoConfig, "{{dir}}", dir) }

// demo is one run of `gatewayd demo`: a lab, the gateway daemon inside it, and
// a narration of each step.
type demo struct {
	ctx    context.Context
	out    io.Writer
	bin    string
	lab    *Lab
	dir    string
	conf   string
	gw     *Namespace
	client *Namespace
	isp    *Namespace
	daemon *exec.Cmd
}

// The demo's outside world: the ISP's router on the WAN link (its DHCP
// server and resolver), the range it leases from, and a host on the
// internet behind it.
const (
	demoISP      = "100.64.0.1"
	demoWANRange = "100.64.0.100,100.64.0.150,255.255.255.0,1h"
	demoInternet = "203.0.113.1"
	// demoWeb is the status page and /metrics, [gateway] metrics of demo.toml.
	demoWeb = "http://192.0.2.1:9253"
)

// Demo builds a namespace lab on this machine (a switch with a gateway and a
// client, and the ISP on a link of its own to the gateway's WAN port), runs
// the gatewayd binary bin inside the gateway on the embedded demo site, shows
// it working and removes everything. keep waits for ctx to end before
// removing the lab, for exploring it by hand.
func Demo(ctx context.Context, out io.Writer, bin string, keep bool) (err error) {
	l, err := Open("")
	if err != nil {
		return err
	}
	d := &demo{ctx: ctx, out: out, bin: bin, lab: l}
	defer func() {
		d.say("Cleaning up: stopping gatewayd and removing the lab's namespaces")
		err = errors.Join(err, l.Close())
		if left, lerr := listNamespaces(l.Prefix() + "-"); lerr == nil && len(left) == 0 {
			fmt.Fprintf(out, "   no namespace with prefix %s is left\n", l.Prefix())
		}
		if d.dir != "" {
			os.RemoveAll(d.dir)
		}
	}()
	steps := []func() error{d.build, d.start, d.showAliases, d.wan, d.lease, d.resolve, d.route, d.web, d.reload, d.status}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if keep {
		d.say("The lab stays up until you press Ctrl-C; enter it with: ip netns exec %s bash", d.gw.Name)
		<-ctx.Done()
	}
	d.say("Done: one box served as router, DHCP and DNS, each role on its own address")
	return nil
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "\n== "+format+"\n", args...)
}

// show runs a command in a namespace and prints it with its output.
func (d *demo) show(ns *Namespace, argv ...string) (string, error) {
	fmt.Fprintf(d.out, "[%s]$ %s\n", strings.TrimPrefix(ns.Name, d.lab.Prefix()+"-"), strings.Join(argv, " "))
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	out, err := ns.Run(ctx, argv...)
	fmt.Fprint(d.out, indent(out))
	return out, err
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "   " + strings.ReplaceAll(s, "\n", "\n   ") + "\n"
}

func (d *demo) build() error {
	d.say("Building the lab: switch 'lan' with the gateway's eth1 and a client; the ISP on a link of its own to the gateway's eth0 (its WAN port)")
	var err error
	if d.dir, err = os.MkdirTemp("", "gatewayd-demo-"); err != nil {
		return err
	}
	sw, err := d.lab.Switch("lan")
	if err != nil {
		return err
	}
	if d.gw, err = d.lab.Namespace("gw"); err != nil {
		return err
	}
	if d.client, err = d.lab.Namespace("client"); err != nil {
		return err
	}
	if d.isp, err = d.lab.Namespace("isp"); err != nil {
		return err
	}
	for _, p := range []struct {
		ns     *Namespace
		ifname string
	}{{d.gw, "eth1"}, {d.client, "eth0"}} {
		if _, err := d.lab.Plug(sw, p.ns, p.ifname); err != nil {
			return err
		}
	}
	if err := d.lab.Link(d.gw, "eth0", d.isp, "eth0"); err != nil {
		return err
	}
	if err := d.gw.Addr("eth1", "192.0.2.250/24"); err != nil {
		return err
	}
	if err := d.isp.Addr("eth0", demoISP+"/24"); err != nil {
		return err
	}
	// The "internet" behind the ISP's router.
	if err := d.isp.Addr("lo", demoInternet+"/32"); err != nil {
		return err
	}
	// The ISP's DHCP server (the WAN address) and resolver (the outside names).
	if _, err := d.isp.Start(d.ctx, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
		"--pid-file=", "--user=root", "--interface=eth0", "--bind-interfaces", "--dhcp-range="+demoWANRange,
		"--dhcp-leasefile="+filepath.Join(d.dir, "isp.leases"), "--address=/example.com/203.0.113.80"); err != nil {
		return err
	}
	d.conf = filepath.Join(d.dir, "gateway.toml")
	fmt.Fprintf(d.out, "   namespaces %s-{gw,client,isp,sw-lan}; gateway's own address 192.0.2.250 on eth1; the ISP %s on eth0's link leases the WAN address and answers DNS\n", d.lab.Prefix(), demoISP)
	return os.WriteFile(d.conf, []byte(DemoConfig(d.dir)), 0o644)
}

func (d *demo) start() error {
	d.say("Starting gatewayd in the gateway namespace on the demo site (%s)", d.conf)
	if _, err := d.show(d.gw, d.bin, "check", "--config", d.conf); err != nil {
		return err
	}
	cmd, err := d.gw.Start(d.ctx, d.bin, "run", "--config", d.conf)
	if err != nil {
		return err
	}
	d.daemon = cmd
	ctx, cancel := context.WithTimeout(d.ctx, 15*time.Second)
	defer cancel()
	err = Poll(ctx, func() error {
		_, err := d.gw.Run(ctx, d.bin, "status", "--config", d.conf)
		return err
	})
	if err != nil {
		return fmt.Errorf("gatewayd did not come up: %w\n%s", err, d.lab.Output(cmd))
	}
	return nil
}

func (d *demo) showAliases() error {
	d.say("Every role has its own alias address on eth1")
	_, err := d.show(d.gw, "ip", "-4", "addr", "show", "dev", "eth1")
	return err
}

func (d *demo) reload() error {
	d.say("Editing the site: a new local name, and the lab subnet's alias gets a label of its own; plan, then reload")
	text, err := os.ReadFile(d.conf)
	if err != nil {
		return err
	}
	edited := strings.Replace(string(text), "address = \"198.51.100.1/24\"", "address = \"198.51.100.1/24\"\nlabel = \"eth1:lab\"", 1) +
		"\n[[dns.host]]\nname = \"wiki\"\naddress = \"192.0.2.21\"\n"
	if err := os.WriteFile(d.conf, []byte(edited), 0o644); err != nil {
		return err
	}
	if _, err := d.show(d.gw, d.bin, "plan", "--config", d.conf); err != nil {
		return err
	}
	if _, err := d.show(d.gw, d.bin, "reload", "--config", d.conf); err != nil {
		return err
	}
	if _, err := d.show(d.client, "dig", "@192.0.2.3", "+short", "+time=2", "+tries=1", "wiki.home.arpa"); err != nil {
		return err
	}
	d.say("Reloading the same file again changes nothing")
	_, err = d.show(d.gw, d.bin, "reload", "--config", d.conf)
	return err
}

func (d *demo) status() error {
	d.say("gatewayd status, and a few lines of /metrics fetched from the client")
	if _, err := d.show(d.gw, d.bin, "status", "--config", d.conf); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "[client]$ GET %s/metrics (a few lines)\n", demoWeb)
	text, err := d.fetch(d.client, demoWeb+"/metrics")
	if err != nil {
		return err
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		for _, m := range demoMetrics {
			if strings.HasPrefix(sc.Text(), m.family) && strings.Contains(sc.Text(), m.with) {
				lines = append(lines, sc.Text())
			}
		}
	}
	if len(lines) == 0 {
		return fmt.Errorf("/metrics has none of the demo's lines:\n%s", text)
	}
	fmt.Fprint(d.out, indent(strings.Join(lines, "\n")))
	return nil
}

// demoMetrics are the series the status step shows: a family, and a label
// the line must have.
var demoMetrics = []struct{ family, with string }{
	{"gatewayd_config_generation ", ""},
	{"gatewayd_dhcp_leases{", `state="active"`},
	{"gatewayd_dns_queries_total{", ""},
	{"gatewayd_alias_packets_total{", `alias="dns"`},
	{"gatewayd_zone_packets_total{", `zone="lan"`},
}

// fetch GETs url from inside ns.
func (d *demo) fetch(ns *Namespace, url string) (string, error) {
	client := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.DialContext(ctx, &net.Dialer{}, network, addr)
		}}}
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetching %s from %s: %w", url, ns.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s", resp.Status)
	}
	if err != nil {
		return "", fmt.Errorf("fetching %s from %s: %w", url, ns.Name, err)
	}
	return string(b), nil
}

// web says where the status page is, and shows it answering the lan.
func (d *demo) web() error {
	d.say("The status page and Prometheus metrics: %s/ on the router alias, open to the lan zone (allow \"web\") and to no other", demoWeb)
	fmt.Fprintf(d.out, "[client]$ GET %s/\n", demoWeb)
	page, err := d.fetch(d.client, demoWeb+"/")
	if err != nil {
		return err
	}
	title := "(no title)"
	if i, j := strings.Index(page, "<title>"), strings.Index(page, "</title>"); i >= 0 && j > i {
		title = strings.TrimSpace(page[i+len("<title>") : j])
	}
	fmt.Fprintf(d.out, "   200 OK, %d bytes: %s\n", len(page), title)
	return nil
}

// wan waits for the WAN port's DHCP lease from the ISP and shows it.
func (d *demo) wan() error {
	d.say("The WAN port eth0 takes its address from the ISP's DHCP server; the default route goes out of it")
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	var up uplink
	err := Poll(ctx, func() error {
		var err error
		up, err = d.uplink(ctx)
		if err == nil && (up.Address == "" || up.DHCP == nil || up.DHCP.State != "bound") {
			err = errors.New("no WAN lease yet")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("the WAN port got no lease: %w", err)
	}
	fmt.Fprintf(d.out, "   leased %s from %s, gateway %s\n", up.Address, up.DHCP.Server, up.Gateway)
	out, err := d.gw.Run(ctx, d.bin, "status", "--config", d.conf)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "[gw]$ %s status --config %s   (the router section)\n", d.bin, d.conf)
	fmt.Fprint(d.out, indent(section(out, "router:")))
	_, err = d.show(d.gw, "ip", "-4", "addr", "show", "dev", "eth0")
	return err
}

// uplink is the WAN port in `gatewayd status --json`.
type uplink struct {
	Address string `json:"address"`
	Gateway string `json:"gateway"`
	DHCP    *struct {
		State  string `json:"state"`
		Server string `json:"server"`
	} `json:"dhcp"`
}

func (d *demo) uplink(ctx context.Context) (uplink, error) {
	out, err := d.gw.Run(ctx, d.bin, "status", "--json", "--config", d.conf)
	if err != nil {
		return uplink{}, err
	}
	var st struct {
		Roles struct {
			Router struct {
				Uplink *uplink `json:"uplink"`
			} `json:"router"`
		} `json:"roles"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return uplink{}, fmt.Errorf("reading status: %w", err)
	}
	if st.Roles.Router.Uplink == nil {
		return uplink{}, errors.New("status shows no WAN port")
	}
	return *st.Roles.Router.Uplink, nil
}

// section is the paragraph of text that starts with a line starting with head.
func section(text, head string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, head):
			out = append(out, line)
		case len(out) > 0 && strings.TrimSpace(line) == "":
			return strings.Join(out, "\n")
		case len(out) > 0:
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// clientScript is udhcpc's hook: it configures the lease on the client's
// interface only (never the machine's resolv.conf) and prints it.
const clientScript = `#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	echo "lease $ip/$mask router=$router dns=$dns domain=$domain server=$serverid lease=${lease}s"
	;;
esac
`

func (d *demo) lease() error {
	d.say("The client asks for a lease (udhcpc): the answer names the router and DNS aliases")
	script := filepath.Join(d.dir, "udhcpc.sh")
	if err := os.WriteFile(script, []byte(clientScript), 0o755); err != nil {
		return err
	}
	if _, err := d.show(d.client, "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", "eth0", "-s", script, "-x", "hostname:laptop"); err != nil {
		return err
	}
	_, err := d.show(d.gw, d.bin, "leases", "--config", d.conf)
	return err
}

func (d *demo) resolve() error {
	d.say("The client resolves local names on the DNS alias, its own DHCP name, and an outside name through the upstream")
	for _, q := range [][]string{
		{"nas.home.arpa"}, {"laptop.home.arpa"}, {"-x", "192.0.2.20"}, {"www.example.com"},
	} {
		argv := append([]string{"dig", "@192.0.2.3", "+short", "+time=2", "+tries=1"}, q...)
		out, err := d.show(d.client, argv...)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "" {
			return fmt.Errorf("no answer for %s", strings.Join(q, " "))
		}
	}
	return nil
}

func (d *demo) route() error {
	d.say("The client reaches the internet through the router alias; the ISP sees the WAN address (masquerade out of eth0)")
	up, err := d.uplink(d.ctx)
	if err != nil {
		return err
	}
	wan, _, _ := strings.Cut(up.Address, "/")
	// The ISP's side of the link, as tcpdump there shows it.
	dump, err := d.isp.Start(d.ctx, "tcpdump", "-l", "-n", "-c", "1", "-i", "eth0", "icmp[icmptype] == icmp-echo and dst host "+demoInternet)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	if err := Poll(ctx, func() error {
		if !strings.Contains(d.lab.Output(dump), "listening on") {
			return errors.New("tcpdump is not listening yet")
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "[client]$ ping %s\n", demoInternet)
	if err := d.ping(d.client, demoInternet); err != nil {
		return fmt.Errorf("the client cannot reach the internet: %w", err)
	}
	fmt.Fprintf(d.out, "   answered\n")
	fmt.Fprintf(d.out, "[isp]$ tcpdump -n -c 1 -i eth0 icmp echo to %s\n", demoInternet)
	waited := make(chan error, 1)
	go func() { waited <- dump.Wait() }()
	select {
	case <-waited:
	case <-ctx.Done():
		return fmt.Errorf("tcpdump in the ISP saw no echo request: %s", d.lab.Output(dump))
	}
	seen := ""
	for _, line := range strings.Split(d.lab.Output(dump), "\n") {
		if strings.Contains(line, " > "+demoInternet) {
			seen = line
		}
	}
	fmt.Fprint(d.out, indent(seen))
	if !strings.Contains(seen, "IP "+wan+" > ") {
		return fmt.Errorf("the ISP saw %q, want the WAN address %s as the source", seen, wan)
	}
	_, err = d.show(d.gw, "nft", "list", "chain", "inet", "gatewayd", "srcnat")
	return err
}

// ping reports whether dst answers from ns.
func (d *demo) ping(ns *Namespace, dst string) error {
	ctx, cancel := context.WithTimeout(d.ctx, 3*time.Second)
	defer cancel()
	return ns.Ping(ctx, netip.MustParseAddr(dst))
}
