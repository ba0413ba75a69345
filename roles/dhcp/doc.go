// Package dhcp is gatewayd's DHCPv4 role: a server that receives on the NIC,
// answers from the DHCP alias (source address and server identifier), hands out
// leases from the configured pools and static leases, and keeps every lease it
// ACKs in a durable, append-only lease log under <state_dir>/dhcp/.
//
// It owns its UDP socket on port 67, a packet socket on the NIC (package
// ether) for the replies unicast to clients that have no address yet and
// for the ARP probes of probe_before_offer, and the lease log. It never
// writes the neighbour table, and must not touch addresses, routes, sysctls
// or the firewall: the aliases are brought up by the aliases package, the
// firewall by firewall. Host names of leases reach the DNS role only
// through the Names interface.
package dhcp
