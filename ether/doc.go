// Package ether sends and reads raw Ethernet frames on one NIC through an
// AF_PACKET socket: ARP (RFC 826), the RFC 5227 probe and announcement, and
// one IPv4/UDP datagram sent straight to a MAC address (a DHCP reply to a
// client that has no address yet). It is gatewayd's only ARP code; IPv6
// neighbour discovery belongs here too when it comes.
//
// It owns the frames it sends and the socket it reads them on, nothing
// else: it never reads or writes the neighbour table, addresses, routes or
// sysctls, and it does not decide whether an address may be announced (the
// caller holds it, or it would steal it).
//
// A [Conn] is opened in the network namespace of the goroutine that calls
// [Open] and stays there: its methods work from any goroutine, and
// [Conn.Rebind] moves it to the new index of a NIC that was deleted and
// created again without opening another socket ([OpenUnbound] makes one
// for a NIC that does not exist yet, bound by Rebind when it appears). One
// reader goroutine per Conn hands received ARP packets to the probes
// waiting for them.
//
// Conflict has one definition, [ARP.Conflicts] (RFC 5227 section 2.1.1).
//
// Why not mdlayher/arp and mdlayher/packet: packet.Conn fixes the interface
// index (and arp.Client the interface's MAC) when it is opened and cannot be
// bound again, so following a re-created NIC means opening a new socket from
// whatever goroutine notices, in whatever namespace that thread is in;
// arp.Dial also asks the interface for an IPv4 address (through a netlink
// socket of the calling thread) and a NIC that has lost its addresses may
// have none; arp.Client reads one packet at a time, so concurrent probes
// (one per DHCP offer) cannot share it; and neither knows RFC 5227 probes,
// announcements or conflicts. What is left is about 150 lines of encoding,
// tested here against captured frames.
package ether
