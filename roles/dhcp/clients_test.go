package dhcp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gatewayd/lab"
)

func TestUdhcpc(t *testing.T) {
	n := newTestNet(t, "udhcpc", "tcpdump")
	c := n.client("c1", "02:00:00:00:01:01")
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	script := clientScript(t, dir, env)
	stop := capture(t, n.lab, c)
	c.MustRun(t, "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", script, "-t", "5", "-T", "1", "-x", "hostname:phone")
	dump := stop()
	t.Logf("tcpdump:\n%s", dump)
	checkReplySources(t, dump)
	e := envOf(t, env, "bound")
	if !inPool(e["ip"]) || e["router"] != "192.0.2.1" || e["dns"] != "192.0.2.3" || e["domain"] != "lan.test" || e["serverid"] != "192.0.2.2" || e["subnet"] != "255.255.255.0" {
		t.Errorf("udhcpc got ip=%s router=%s dns=%s domain=%s serverid=%s subnet=%s", e["ip"], e["router"], e["dns"], e["domain"], e["serverid"], e["subnet"])
	}
	if l, ok := n.lease(e["ip"]); !ok || l.MAC != "02:00:00:00:01:01" || l.Hostname != "phone" {
		t.Errorf("server lease %+v", l)
	}
	if got := n.names.get("phone"); got.String() != e["ip"] {
		t.Errorf("name phone published as %v", got)
	}
}

func TestDhclient(t *testing.T) {
	n := newTestNet(t, "dhclient", "tcpdump")
	c := n.client("c2", "02:00:00:00:01:02")
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	script := clientScript(t, dir, env)
	conf := filepath.Join(dir, "dhclient.conf")
	os.WriteFile(conf, []byte("send host-name \"laptop\";\nrequest subnet-mask, routers, domain-name, domain-name-servers, dhcp-lease-time;\n"), 0o644)
	args := []string{"dhclient", "-4", "-1", "-v", "-cf", conf, "-sf", script, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid")}
	stop := capture(t, n.lab, c)
	c.MustRun(t, append(args, "eth0")...)
	dump := stop()
	t.Logf("tcpdump:\n%s", dump)
	checkReplySources(t, dump)
	e := envOf(t, env, "BOUND")
	if !inPool(e["new_ip_address"]) || e["new_routers"] != "192.0.2.1" || e["new_domain_name_servers"] != "192.0.2.3" ||
		e["new_domain_name"] != "lan.test" || e["new_dhcp_server_identifier"] != "192.0.2.2" {
		t.Errorf("dhclient got ip=%s routers=%s dns=%s domain=%s server=%s", e["new_ip_address"], e["new_routers"], e["new_domain_name_servers"], e["new_domain_name"], e["new_dhcp_server_identifier"])
	}
	addr := e["new_ip_address"]
	if got := n.names.get("laptop"); got.String() != addr {
		t.Errorf("name laptop published as %v", got)
	}
	// RELEASE: dhclient -r unicasts it to the server identifier.
	c.MustRun(t, append([]string{"dhclient", "-4", "-r", "-v", "-cf", conf, "-sf", script, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid")}, "eth0")...)
	lab.Eventually(t, 5*time.Second, func() error {
		if l, ok := n.lease(addr); ok {
			return fmt.Errorf("lease still %s after RELEASE", l.State)
		}
		return nil
	})
	if got := n.names.get("laptop"); got.IsValid() {
		t.Errorf("name laptop still published as %v after RELEASE", got)
	}
}

func TestDhcpcd(t *testing.T) {
	n := newTestNet(t, "dhcpcd", "tcpdump")
	c := n.client("c3", "02:00:00:00:01:03")
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	script := clientScript(t, dir, env)
	stop := capture(t, n.lab, c)
	// -A: no ARP probe of the offered address (5 s); TestDecline covers it.
	runDhcpcd(t, c, "-A", "-c", script, "-h", "tablet", "eth0")
	dump := stop()
	checkReplySources(t, dump)
	e := envOf(t, env, "BOUND")
	if !inPool(e["new_ip_address"]) || e["new_routers"] != "192.0.2.1" || e["new_domain_name_servers"] != "192.0.2.3" ||
		e["new_domain_name"] != "lan.test" || e["new_dhcp_server_identifier"] != "192.0.2.2" {
		t.Errorf("dhcpcd got ip=%s routers=%s dns=%s domain=%s server=%s", e["new_ip_address"], e["new_routers"], e["new_domain_name_servers"], e["new_domain_name"], e["new_dhcp_server_identifier"])
	}
	// dhcpcd sends a client identifier (RFC 4361): the lease is keyed by it.
	if l, ok := n.lease(e["new_ip_address"]); !ok || l.ClientID == "" || l.Hostname != "tablet" {
		t.Errorf("server lease %+v", l)
	}
}

// runDhcpcd runs dhcpcd once in the foreground: it exits once bound. It
// runs in a mount namespace of its own with empty /var/lib/dhcpcd and
// /run/dhcpcd, so it keeps no lease or DUID on the host between runs.
func runDhcpcd(t *testing.T, ns *lab.Namespace, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const private = `for d in /var/lib/dhcpcd /run/dhcpcd; do mkdir -p $d && mount -t tmpfs gatewayd-test $d || exit 1; done; exec dhcpcd "$@"`
	argv := append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c", private, "sh", "-4", "-1", "-B", "-t", "30"}, args...)
	out, err := ns.Run(ctx, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
