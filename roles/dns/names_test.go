package dns

import "gatewayd/roles/dhcp"

// The DHCP role publishes its clients' names through this interface.
var _ dhcp.Names = (*Server)(nil)
