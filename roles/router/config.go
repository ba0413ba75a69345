package router

// Config is the router role's whole desired state on this box: forwarding
// and its sysctls on Interface, and the routes gatewayd owns. The
// controller computes it once from the site file; Set(nil) releases
// everything the role holds (another box holds the router alias, or there
// is no [router] section).
type Config struct {
	Interface string  // the NIC the aliases live on
	Routes    []Route // the default route first, then the static ones
}
