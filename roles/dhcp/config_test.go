package dhcp

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"gatewayd/config"
)

// testTOML is the config the pure tests serve: one pool on the wire with
// routes and a raw option, one relayed pool, one static lease.
const testTOML = `
[gateway]
interface = "eth1"
host = "gw"

[[alias]]
name = "router"
address = "192.0.2.1/24"

[[alias]]
name = "dhcp"
address = "192.0.2.2/24"

[[alias]]
name = "dns"
address = "192.0.2.3/24"

[router]
alias = "router"
upstream = "192.0.2.254"

[dhcp]
alias = "dhcp"
lease_time = "1h"
offer_time = "30s"
decline_time = "10m"

[[dhcp.pool]]
range = "192.0.2.100-192.0.2.109"
router = "router"
dns = ["dns"]
ntp = ["router"]
broadcast = "192.0.2.255"
[[dhcp.pool.route]]
to = "172.16.0.0/12"
via = "192.0.2.254"
[[dhcp.pool.option]]
code = 252
text = "http://wpad.invalid/wpad.dat"

[[dhcp.pool]]
range = "198.51.100.10-198.51.100.19"
subnet = "198.51.100.0/24"
router = "198.51.100.1"
lease_time = "2h"

[[dhcp.static]]
mac = "02:00:00:00:00:aa"
address = "192.0.2.10"
hostname = "printer"

[[dhcp.static]]
client_id = "01:02:00:00:00:00:bb"
address = "192.0.2.11"

[dns]
alias = "dns"
domain = "lan.test"
`

// parseConfig parses TOML, failing the test on error.
func parseConfig(t testing.TB, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatalf("parsing test config: %v", err)
	}
	return c
}

// editConfig replaces old with new in testTOML, failing when old is absent.
func editConfig(t testing.TB, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("test config has no %q", old)
	}
	return strings.Replace(text, old, new, 1)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
