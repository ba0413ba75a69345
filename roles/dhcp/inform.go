package dhcp

import (
	"net/netip"
)

// inform answers a client that has an address and wants only the options
// (RFC 2131 §3.4): no yiaddr, no lease times. The ACK goes to ciaddr only
// when that is a unicast address on the client's subnet; otherwise (0, the
// subnet's network or broadcast address, an address of another network)
// to the packet's IP source, as Kea does, so one spoofed INFORM cannot make
// the server broadcast to the LAN. A relayed INFORM goes back to the relay.
func (h *handler) inform(req *packet, cands []*pool, src netip.AddrPort) outcome {
	var p *pool
	var to netip.AddrPort
	if ci := req.ciaddr; ci != 0 {
		if p = onSubnet(cands, ci); p != nil && unicastOn(p.cfg.Subnet, ci) {
			to = netip.AddrPortFrom(u32Addr(ci), clientPort)
		}
	}
	relayed := req.giaddr != 0
	switch {
	case relayed && p == nil && len(cands) > 0:
		p = cands[0] // the pools of giaddr's subnet
	case !to.IsValid() && !relayed:
		s := src.Addr()
		if !s.Is4() || s.IsUnspecified() || s.IsMulticast() || s == bcast4 || src.Port() == 0 {
			return h.ignore("an INFORM with no unicast address to answer")
		}
		if p == nil {
			p = onSubnet(cands, addrU32(s))
		}
		to = src
	}
	if p == nil {
		return h.ignore("an INFORM from a network no pool serves")
	}
	r := &h.rep
	r.start(req, ackType, h.serverID)
	r.ciaddr = req.ciaddr
	p.opts.apply(r, req.opts.get(optParamRequest), false)
	return h.send(req, r, outcome{to: to})
}

// unicastOn reports whether a is a host address of subnet: not its network
// or broadcast address (a /31 or /32 has neither).
func unicastOn(subnet netip.Prefix, a uint32) bool {
	if !subnet.Contains(u32Addr(a)) {
		return false
	}
	if subnet.Bits() >= 31 {
		return true
	}
	return a != addrU32(subnet.Masked().Addr()) && u32Addr(a) != broadcastOf(subnet)
}
