package router

// Config is the router role's whole desired state on this box: forwarding
// and its sysctls on Interface, and the routes gatewayd owns. The
// controller computes it once from the site file; Set(nil) releases
// everything the role holds (another box holds the router alias, or there
// is no [router] section).
//
// The forwarding sysctls are derived from Interface inside the package.
type Config struct {
	Interface string // the NIC the aliases live on
	// Routes are the default route (via the upstream) first, then the
	// static ones. A route without an Interface is on Interface.
	Routes []Route
}
