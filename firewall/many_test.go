package firewall

import (
	"fmt"
	"strings"
)

// manyZones is a config with n zones of one /24 each (10.a.b.0/24), every
// zone allowed dns and ping and routed to the upstream and the next zone:
// with n = 1000 that is about 2,000 forward rules and 10,000 rules in all.
func manyZones(n int) string {
	var b strings.Builder
	b.WriteString(`[gateway]
interface = "eth1"

[[alias]]
name = "router"
address = "192.168.1.1/24"

[[alias]]
name = "dns"
address = "192.168.1.3/24"

[router]
alias = "router"
upstream = "192.168.1.254"
masquerade = true

[dns]
alias = "dns"
upstreams = ["192.168.1.254"]

[zone.lan]
subnets = ["192.168.1.0/24"]
allow = ["dns", "ssh", "ping"]
forward = ["upstream"]
`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "\n[zone.z%04d]\nsubnets = [\"10.%d.%d.0/24\"]\nallow = [\"dns\", \"ping\"]\nforward = [\"upstream\", \"z%04d\"]\n",
			i, i/256, i%256, (i+1)%n)
	}
	return b.String()
}
