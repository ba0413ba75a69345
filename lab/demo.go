package lab

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
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

// Demo builds a namespace lab on this machine (a switch, a gateway, a client and
// the upstream router), runs the gatewayd binary bin inside the gateway on the
// embedded demo site, shows it working and removes everything. keep waits for
// ctx to end before removing the lab, for exploring it by hand.
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
	steps := []func() error{d.build, d.start, d.showAliases, d.lease, d.resolve, d.route, d.reload, d.status}
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
	d.say("Building the lab: switch 'lan' with a gateway (eth1), a client and the upstream router")
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
	}{{d.gw, "eth1"}, {d.client, "eth0"}, {d.isp, "eth0"}} {
		if _, err := d.lab.Plug(sw, p.ns, p.ifname); err != nil {
			return err
		}
	}
	if err := d.gw.Addr("eth1", "192.0.2.250/24"); err != nil {
		return err
	}
	if err := d.isp.Addr("eth0", "192.0.2.254/24"); err != nil {
		return err
	}
	// The "internet" behind the upstream router, and its resolver.
	if err := d.isp.Addr("lo", "203.0.113.1/32"); err != nil {
		return err
	}
	if _, err := d.isp.Start(d.ctx, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
		"--pid-file=", "--user=root", "--listen-address=192.0.2.254", "--bind-interfaces", "--address=/example.com/203.0.113.80"); err != nil {
		return err
	}
	if d.dir, err = os.MkdirTemp("", "gatewayd-demo-"); err != nil {
		return err
	}
	d.conf = filepath.Join(d.dir, "gateway.toml")
	fmt.Fprintf(d.out, "   namespaces %s-{gw,client,isp,sw-lan}; gateway's own address 192.0.2.250, upstream 192.0.2.254\n", d.lab.Prefix())
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
	d.say("gatewayd status")
	_, err := d.show(d.gw, d.bin, "status", "--config", d.conf)
	return err
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
	d.say("The client reaches the outside through the router alias; the upstream sees the gateway's address (masquerade)")
	fmt.Fprintf(d.out, "[client]$ ping 203.0.113.1\n")
	if err := d.ping(d.client, "203.0.113.1"); err != nil {
		return fmt.Errorf("the client cannot reach the upstream: %w", err)
	}
	fmt.Fprintf(d.out, "   answered\n")
	_, err := d.show(d.gw, "nft", "list", "chain", "inet", "gatewayd", "srcnat")
	return err
}

// ping reports whether dst answers from ns.
func (d *demo) ping(ns *Namespace, dst string) error {
	ctx, cancel := context.WithTimeout(d.ctx, 3*time.Second)
	defer cancel()
	return ns.Ping(ctx, netip.MustParseAddr(dst))
}
