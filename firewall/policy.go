package firewall

// Policy is the firewall's input: what this box holds and what every zone
// may reach, already resolved by the controller. Build turns it into the
// Ruleset, the table's desired state.
type Policy struct {
	Interface string      // the NIC carrying the aliases
	Aliases   []AliasInfo // the aliases this box holds, in config order
	Zones     []ZoneInfo  // every zone, implicit ones last, Access resolved
	// Masquerade: the router role is held here with NAT on.
	Masquerade bool
}
