// Package firewall owns gatewayd's nftables table, `table inet gatewayd`, and
// nothing else: it never reads, changes or deletes another table (a distro
// firewall, iptables-nft, Docker).
//
// The core is pure: [Build] turns a [Policy] (the aliases held here, what
// every zone may reach, the WAN port, resolved by the controller from the
// site file) into a [Ruleset], a plain description of the whole table,
// which [Ruleset.Render] prints as `nft -f` text (golden tests pin it;
// `gatewayd plan` prints [Diff] of two renderings). The package does not read
// the site file.
//
// The kernel edge, [Firewall], reads the table back and compares it with the
// ruleset: every rule it writes carries a fingerprint of its rendering in
// its userdata, so the comparison needs no decoding of expressions. It then
// sends one netlink batch that changes only what differs (a chain whose rules
// differ is flushed and refilled, sets gain and lose elements, missing
// chains, sets and counters are added, foreign ones deleted): the change is
// atomic, in-flight packets of allowed flows are not lost (recreating large
// interval sets was what lost them), and named counters keep counting. A
// Set that finds the kernel holding its ruleset writes nothing, so a restart
// with the same policy makes no kernel change; a Set of the ruleset last
// applied costs one generation query while nothing was committed since.
// [Firewall.Watch] reports changes others make to the table (nftables
// netlink notifications, its own batches' echo ignored), so the controller
// can restore it with Set.
//
// # Layout (in the spirit of OpenWrt fw4)
//
//   - Every interface is policed: nothing is accepted because of the
//     interface it came in on, loopback aside. Input and forward drop by
//     default; output accepts but drops ICMP redirects.
//   - Input first counts the packets to each alias, and accepts what keeps
//     links working before any zone can claim it: ICMPv6 neighbour
//     solicitations and advertisements (hop limit 255, as RFC 4861
//     requires) and MLD queries from link-local sources on any interface,
//     router advertisements only on the WAN port when it takes them, and
//     the DHCP DISCOVER (0.0.0.0 → 255.255.255.255 on the alias NIC), which
//     matches no source-subnet zone, when some zone allows the dhcp service.
//   - Then input and forward hand each packet to the chain of its origin:
//     the zone naming its input interface (an interface match takes
//     precedence over a subnet match); on the alias NIC the zone of its IPv4
//     source subnet (the interval verdict maps zone_in and zone_fwd); else
//     the upstream (in_upstream, fwd_upstream) for IPv4 on the alias NIC and
//     everything on the WAN port; what is left (interfaces no zone names,
//     IPv6 on the alias NIC) meets the closed rules at the end of the base
//     chains.
//   - Every origin first accepts ct state established,related and drops
//     invalid, as fw4 does for every interface. Conntrack tracks nothing in
//     a namespace until a ruleset uses it, so a TCP session opened before
//     the first start (the admin's SSH) reaches the box as ct state new
//     without SYN. Nothing takes such segments up for their own sake: the
//     service rules below match destination and port, not flags, so a
//     session to a service its zone may reach survives the first start,
//     and every other (from the upstream, a closed interface, or to a port
//     its zone may not reach) is dropped as new: an ACK scan gets no reset
//     and spoofed ACKs fill no conntrack table.
//   - A zone's input chain then accepts exactly its services on the alias
//     address that serves them, and its management services (ssh, ping:
//     ZoneInfo.Manage) on the box's own addresses that are not aliases (the
//     primary address, addresses added by hand), matched as a local unicast
//     destination outside @aliases_v4, so they need not be known. The ping
//     service is ICMP echo request only; ICMPv6 echo requests follow it
//     where IPv6 reaches the zone (the interfaces it names).
//   - A zone's forward chain routes it where it may go: out of the
//     interfaces a target zone names, to the target's subnets on the alias
//     NIC, and for "upstream" out of the WAN port and to outside every zone
//     on the alias NIC. A closed interface is no one's upstream.
//   - The upstream reaches the box only with replies, and is forwarded
//     nowhere; the closed interfaces likewise. A WAN port whose address DHCP
//     learns needs no rule of its own: the router role's DHCP client sends
//     and reads through a packet socket, past the table. What an origin is
//     not allowed is logged with a rate limit ("gatewayd drop <zone>: ",
//     "gatewayd drop, no zone: " for the closed rest; the kernel's line names
//     the interface) and dropped, counted.
//   - NAT, with the router role held here and masquerade on: out of the WAN
//     port everything gets its address (snat to the static address, or
//     masquerade for a DHCP one); out of the
//     alias NIC what goes to outside every zone gets the router alias
//     (Policy.SNAT; masquerade when unset), except the box's own traffic
//     (fib saddr type local), so replies keep leaving from the role's alias.
//     Traffic between zones is never NATed.
//
// # IPv6 policy
//
// The roles are IPv4-only and source-subnet zones are IPv4 subnets. So that
// the box keeps IPv6 working on its links (link-local addresses, SLAAC),
// neighbour discovery and MLD queries are accepted on every interface;
// replies and errors for the box's own IPv6 connections pass as
// established/related. Router advertisements are accepted only on a WAN
// port that takes them (Uplink.AcceptRA): a host in a zone never becomes the
// box's IPv6 router. IPv6 reaches a zone only through interfaces it names;
// every other new IPv6 packet, to the box or forwarded, is dropped: as
// closed on the alias NIC, as the upstream's on the WAN port. ICMPv6
// redirects are dropped on output like ICMP ones.
//
// # Accounting
//
// Named counters, in two independent dimensions. By address:
// alias_<alias>_in / _out count every packet to and from each alias held
// here, accepted or not.
//
// By origin, where every packet through input and forward lands in exactly
// one counter (loopback is not counted):
//
//   - link_in: what keeps links working, accepted before any zone can claim
//     it (neighbour discovery, MLD queries, RAs on the WAN port, DHCP
//     DISCOVERs);
//   - zone_<zone>_in: accepted from the zone to this box;
//   - zone_<zone>_fwd: forwarded from the zone, of flows it opened (ct
//     direction original);
//   - zone_<zone>_ret: forwarded from the zone as replies to flows opened
//     elsewhere (so zone_upstream_ret is what comes back from the upstream);
//   - zone_<zone>_drop: dropped from the zone, invalid state included;
//   - zone_upstream_* and closed_* likewise for the upstream and for what no
//     zone claims.
//
// Counters keep their values across a reload that keeps them, and across a
// restart, because Set never recreates a counter it keeps. [Firewall.Counters]
// returns them grouped by alias and origin.
//
// Subnet zones on one wire do not stop a host that spoofs another subnet's
// source address (rp_filter cannot tell them apart on one NIC); separating
// them needs VLANs, interfaces of their own, or MAC-bound leases.
package firewall
