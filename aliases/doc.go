// Package aliases owns the alias addresses gatewayd puts on its one NIC
// (eth1:0, eth1:1, … as `ip addr` shows them): it adds the ones the
// desired state names, removes the ones it added earlier that are no longer
// wanted, puts back the ones someone else removes, announces new ones with
// gratuitous ARP and probes (RFC 5227) whether an address is held elsewhere.
//
// It owns exactly the addresses recorded in <state dir>/aliases.json, which
// it writes (through package statedir) before it adds anything (every
// address about to be added, in one write: none is ever on the NIC
// unrecorded), and again once a reconcile has removed, relabelled or failed
// to add one;
// [NIC.owned] is the only answer to "did gatewayd add this?", and
// removable, checked against the kernel before every delete, has the last
// word: the NIC's own address is never removed, whatever the record says.
// It must never change any other address (the NIC's primary address,
// addresses added by hand), any other interface, or any sysctl but
// net.ipv4.conf.<nic>.promote_secondaries. The ARP frames are package
// ether's; the network namespace is always the caller's (it never switches
// one). It knows nothing of the configuration file: the controller turns
// config into [Alias] values.
package aliases
