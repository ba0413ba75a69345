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
//   - no IPv6 router advertisements taken from any zone:
//     net.ipv6.conf.<nic>.accept_ra = 0;
//   - the Config's routes in the main table: the static ones and the default
//     route, which comes from exactly one place: the upstream on the alias
//     wire (default via <upstream> dev <nic>), or the [Uplink].
//
// With an Uplink (a WAN port: an interface of its own towards the ISP) Set
// also holds the WAN address on it, static or leased by the role's DHCPv4
// client, the default route via the WAN gateway,
// net.ipv4.conf.<wan>.promote_secondaries = 1 (so that deleting the WAN
// address, when it moves inside its subnet or is released, never deletes
// the subnet's other addresses with it: gatewayd's new one, or one added by
// hand; where it cannot be set the delete waits), and
// net.ipv6.conf.<wan>.accept_ra = 2 when the Uplink accepts router
// advertisements, else 0. The client renews its lease at T1 and rebinds at
// T2, keeps it in the state directory so a restart asks for the same
// address, and releases it (DHCPRELEASE) on Set(nil) and Purge, and when the
// uplink stops asking for it; a lease kept by a previous run is released
// too, on a socket opened for it. The ISP's DNS servers are shown in Status;
// the role does not use them.
//
// Masquerading is the firewall's job (the controller gives it the NAT
// intent); this package owns no nftables state and never touches DNS.
//
// # What it owns
//
// Routes: only those it added, recorded in <state dir>/router.json before
// they are added and tagged with protocol 177 ("gatewayd"). A route is
// gatewayd's when both the record and the kernel's route (destination,
// gateway, device, protocol) agree; any other route is never changed or
// deleted. A desired route already present but not gatewayd's is left as it
// is and not taken over; one that conflicts (same destination, another
// gateway) is reported as an error. Changes are made add-before-delete: a
// route whose gateway changes is replaced in one netlink call, so there is no
// moment without it.
//
// The WAN address: owned the same way, by the record alone (the kernel has
// no ownership tag for addresses). An address already on the WAN interface
// that gatewayd did not add is left alone, and never removed. A leased
// address is given the lease's remaining time as its valid and preferred
// lifetimes, refreshed on every renewal, so the kernel drops it when the
// lease ends even if gatewayd is not running; a static one is permanent.
//
// Sysctls: written only when they differ, from the caller's network namespace
// (through /proc/sys), and each value found is recorded before it is changed.
// The netlink handle for routes and addresses is opened by Open in the
// caller's namespace, and so are the DHCP client's packet sockets, by Set
// (and by Set(nil) or Purge for the release of a lease a previous run kept).
//
// # Links that come and go
//
// The kernel drops a route via a gateway when its link goes down or its
// subnet's address is flushed, and an interface's addresses and sysctls with
// the interface; it puts none of them back. Set puts them back: a Set with an
// unchanged Config re-adds what the Config wants and the kernel lost (the
// record forgets what the kernel no longer has; the intent is the Config's).
// What the kernel cannot take yet (an interface absent or down, a next hop on
// no subnet of its interface yet, no DHCP lease yet) is pending: listed in
// Status, not an error, and applied by the first Set after it becomes
// possible. The DHCP client's socket is opened again by Set when its
// interface was re-created or went down and up, and the lease it holds is
// then confirmed at once (INIT-REBOOT), since the cable may have moved to
// another network. A lease the client gets,
// extends or loses is applied at once by the role's own goroutine, which
// uses only the netlink handle and the record.
//
// The controller's drift loop calls Set on netlink events and on a tick, so a
// Set with nothing to do only reads (one dump each of links, routes and, with
// an uplink, addresses; a few sysctl reads) and writes nothing, to the kernel
// or to the record. Writes counts every kernel change, so repairs can be
// counted.
//
// # When the role leaves
//
// Set(nil) means the role is not held here ([router] is absent or its alias
// is held by another box): Set releases the lease (the previous run's
// included, when this one never started a client), removes the routes and
// addresses it owns and puts back every sysctl it changed to the value it
// found, unless someone has changed it since (then it is left alone). So a
// box that was not forwarding before gatewayd stops forwarding when the
// router alias moves away, and a box that forwarded for other reasons
// (containers) keeps doing so. Close leaves everything in place, the lease
// included, so routing continues while gatewayd restarts; Purge is the
// removal: lease, routes, addresses and sysctls back.
package router
