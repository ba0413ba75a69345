// Package dns is gatewayd's DNS role: a small recursive-forwarding server
// bound to the DNS alias that knows the site's own names and forwards the
// rest.
//
// A query passes a pipeline of small stages, each in its own file and tested
// on its own (the shape of CoreDNS's plugin chain):
//
//	access   answer only clients of zones that allow the "dns" service
//	special  names never forwarded (RFC 6761, 6762, 7686, 6303)
//	local    the local zone: config hosts, DHCP lease names, aliases, CNAMEs
//	route    conditional forwarding per domain
//	cache    positive and negative answers, merged concurrent misses
//	rebind   drops private addresses in answers for public names
//	forward  retransmission and hedging across upstreams, answers scrubbed
//
// The role takes one Config, its whole desired state, which the controller
// derives from the site file; the package never reads the site file itself.
//
// The package owns the UDP and TCP sockets on port 53 of the DNS alias and
// the sockets it opens towards upstream servers, all opened through
// Options.Net (the net package by default); it does no network namespace
// handling of its own. It must not touch addresses, routes or the firewall:
// the alias is added by package aliases, the port is opened by package
// firewall.
package dns
