// Package router is the router role: it makes the box forward between its
// zones and to the upstream while it holds the router alias.
//
// It takes one [Config], computed by the controller, and does not read the
// site file. While the role is held here (Set with a Config), Set makes sure
// of:
//
//   - net.ipv4.ip_forward = 1;
//   - no ICMP redirects: send_redirects = 0 and accept_redirects = 0, for
//     "all" and for the NIC (every subnet shares one NIC, so the kernel would
//     otherwise tell clients to bypass the router, and the firewall);
//   - reverse-path filtering on the NIC: net.ipv4.conf.<nic>.rp_filter = 1;
//   - the Config's routes in the main table: the upstream default route
//     (default via <upstream> dev <nic>) and the static ones.
//
// Masquerading is the firewall's job (the controller gives it the NAT
// intent); this package owns no nftables state.
//
// # What it owns
//
// Routes: only those it added, recorded in <state dir>/router.json and tagged
// with protocol 177 ("gatewayd"). A route is gatewayd's when both the record
// and the kernel's route (destination, gateway, device, protocol) agree; any
// other route is never changed or deleted. A desired route already present
// but not gatewayd's is left as it is and not taken over; one that conflicts
// (same destination, another gateway) is reported as an error. Changes are
// made add-before-delete: a route whose gateway changes is replaced in one
// netlink call, so there is no moment without it.
//
// Sysctls: written only when they differ, from the caller's network namespace
// (through /proc/sys), and each value found is recorded before it is changed.
// The netlink handle for routes is opened by Open in the caller's namespace.
//
// # When the role leaves
//
// Set(nil) means the role is not held here ([router] is absent or its alias
// is held by another box): Set removes the routes it owns and puts back
// every sysctl it changed to the value it found, unless someone has changed
// it since (then it is left alone). So a box
// that was not forwarding before gatewayd stops forwarding when the router
// alias moves away, and a box that forwarded for other reasons (containers)
// keeps doing so. Close leaves everything in place, so routing continues
// while gatewayd restarts; Purge is the removal: routes and sysctls back.
package router
