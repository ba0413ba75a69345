// Package firewall owns gatewayd's nftables table, `table inet gatewayd`, and
// nothing else: it never reads, changes or deletes another table (a distro
// firewall, iptables-nft, Docker).
//
// The core is pure: [Build] turns a [Policy] (the aliases held here and what
// every zone may reach, resolved by the controller from the site file) into
// a [Ruleset], a plain description of the whole table, which
// [Ruleset.Render] prints as `nft -f` text (golden tests pin it; `gatewayd
// plan` prints [Diff] of two renderings). The package does not read the
// site file. The kernel edge, [Firewall], applies a Ruleset through
// google/nftables in one netlink batch that flushes and rebuilds the table, so
// there is never a moment without rules nor one with both the old and the new
// rules, and named counters survive a reload that keeps them.
//
// # Layout (in the spirit of OpenWrt fw4)
//
//   - gatewayd polices what arrives on its NIC: input and forward accept
//     packets from other interfaces (a management NIC, container bridges) at
//     once, leaving them to the box's other firewalls.
//   - input and forward drop by default; output accepts but drops ICMP
//     redirects; loopback is accepted; invalid conntrack state is dropped.
//   - packets are dispatched by source subnet to a chain per zone through the
//     interval verdict maps zone_in and zone_fwd. Each zone chain counts the
//     zone's traffic, accepts established/related, then exactly what the zone
//     is allowed: its services on the alias address that serves them (input),
//     the zones it names and the upstream (forward). The rest is logged with a
//     rate limit ("gatewayd drop <zone>: ") and dropped, counted.
//   - traffic from outside every zone (the upstream) reaches the box and is
//     forwarded only as a reply; the rest is dropped as zone "upstream".
//   - DHCP: the DISCOVER (0.0.0.0 → 255.255.255.255) matches no zone, so one
//     rule on the NIC accepts it when some zone allows the dhcp service; zones
//     allowing dhcp also reach it on 255.255.255.255.
//   - NAT: with the router role held here and masquerade on, traffic from a
//     zone to outside every zone is masqueraded. There is one NIC, so this is
//     keyed on addresses (ip saddr @zones_v4 ip daddr != @zones_v4), and the
//     box's own traffic (fib saddr type local) is left alone so replies keep
//     leaving from the role's alias.
//
// # IPv6 policy
//
// The roles are IPv4-only and zones are IPv4 subnets. So that the box keeps
// IPv6 working on its link (link-local addresses, SLAAC), input accepts ICMPv6
// neighbour and router discovery (neighbour solicitation/advertisement and
// router advertisement, only with hop limit 255 as RFC 4861 requires) and
// multicast listener queries from link-local sources; replies and errors for
// the box's own IPv6 connections pass as established/related. Every other
// IPv6 packet to the box, and all forwarded IPv6, is dropped and counted as
// zone "upstream". ICMPv6 redirects are dropped on output like ICMP ones.
//
// # Accounting
//
// Named counters: alias_<alias>_in / _out count every packet to and from each
// alias held here; zone_<zone>_in / _fwd / _drop count what each zone sends to
// the box, what it has routed, and what is dropped. Counters keep their values
// across a reload that keeps them, because Set flushes and rebuilds the table
// instead of deleting it.
//
// Subnet zones on one wire do not stop a host that spoofs another subnet's
// source address (rp_filter cannot tell them apart on one NIC); separating
// them needs VLANs or MAC-bound leases.
package firewall
