package config

import (
	"strings"
	"testing"
)

func TestSeedConfigLoads(t *testing.T) {
	c, err := Load("../etc/gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Aliases) != 4 || c.Aliases[3].Label != "eth1:3" {
		t.Fatalf("aliases: %+v", c.Aliases)
	}
	p := c.DHCP.Pools[0]
	if p.Router.String() != "192.168.1.1" || len(p.DNS) != 1 || p.DNS[0].String() != "192.168.1.3" || p.Domain != "home.arpa" {
		t.Fatalf("pool not resolved: %+v", p)
	}
	if c.DHCP.Pools[1].Router.String() != "10.0.0.1" {
		t.Fatalf("lab pool router: %v", c.DHCP.Pools[1].Router)
	}
	if len(c.Zones) != 2 {
		t.Fatalf("zones: %+v", c.Zones)
	}
	// The seed's upstream router is on the alias wire, as on the three boxes
	// it replaces; that is its only warning.
	if len(c.Warnings) != 1 || c.Warnings[0].Key != "router.upstream" || !strings.HasPrefix(c.Warnings[0].Msg, "the upstream router 192.168.1.254 is inside zone lan's subnet") {
		t.Fatalf("the example file's warnings: %v", c.Warnings)
	}
}
