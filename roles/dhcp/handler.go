package dhcp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// handler is the protocol: it turns one request into at most one reply, the
// bindings to make durable before the reply leaves, and the name changes to
// make after. It does no I/O; the server's lock guards it.
type handler struct {
	alloc         *allocator
	onLink        []*pool // pools for clients on the wire (no relay)
	serverID      uint32  // the DHCP alias: option 54 and the replies' source
	authoritative bool
	probe         bool // ARP-probe an address with no binding before offering it
	offerTime     time.Duration
	declineTime   time.Duration
	counters      *counters
	log           *slog.Logger
	logs          *logLimit // budgets of the decision log (events.go); nil: none
	// dropLogged holds the clients and options already logged as not
	// fitting in a reply, so a retransmitting client is logged once.
	dropLogged map[string]struct{}
	// pendingLogged holds the static addresses logged as held by another
	// client, so the conflict is logged once until it ends.
	pendingLogged map[uint32]bool
}

// configure applies a new desired state, keeping every binding and offer.
func (h *handler) configure(d *Config) {
	var pools, onLink []*pool
	for i := range d.Pools {
		p := newPool(&d.Pools[i])
		p.opts = buildPoolOptions(&d.Pools[i])
		pools = append(pools, p)
		if !d.Pools[i].Relayed {
			onLink = append(onLink, p)
		}
	}
	h.alloc.configure(pools, d.Static)
	h.onLink = onLink
	h.serverID = addrU32(d.Server.Addr())
	h.authoritative = d.Authoritative
	h.probe = d.ProbeBeforeOffer
	h.offerTime, h.declineTime = d.OfferTime, d.DeclineTime
	clear(h.dropLogged)
}

// inbound is one received request.
type inbound struct {
	pkt *dhcpv4.DHCPv4
	src netip.AddrPort
}

// outcome is what the server does about a request.
type outcome struct {
	reply *dhcpv4.DHCPv4
	wire  []byte // the reply as sent: fitted to the client, options ordered
	to    netip.AddrPort
	// direct sends the reply as a frame to chaddr (packet socket): a
	// unicast to a client that cannot answer ARP for yiaddr yet.
	direct bool
	// probe asks for an ARP probe of yiaddr before the OFFER leaves.
	probe  bool
	commit []*binding   // on disk before the reply leaves
	names  []nameChange // applied once committed
	why    string       // why there is no reply (debug log)
	req    request      // the request, for the log
	ack    *request     // an ACK's lease, logged once committed
	lease  time.Duration
}

// client is who sent a request.
type client struct {
	key, mac, clientID string
	hostname           string // sanitised option 12 or 81; "" when none
}

var (
	bcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

const (
	serverPort = 67
	clientPort = 68
)

// handleBytes parses and handles one packet. Anything malformed is dropped
// and counted, and a panic is caught as the last line of defence.
func (h *handler) handleBytes(now time.Time, b []byte, src netip.AddrPort) (out outcome) {
	defer func() {
		if r := recover(); r != nil {
			h.counters.panics.Add(1)
			h.log.Error("handling a DHCP packet failed; dropped", "err", fmt.Sprint(r), "src", src)
			out = outcome{why: "panic"}
		}
	}()
	pkt, err := dhcpv4.FromBytes(b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The options end without END: some clients send that, and Kea
		// answers them. Everything else malformed is still refused.
		pkt, err = dhcpv4.FromBytes(append(b[:len(b):len(b)], optEnd))
	}
	if err != nil {
		h.counters.malformed.Add(1)
		return outcome{why: "malformed: " + err.Error()}
	}
	return h.handle(now, inbound{pkt: pkt, src: src})
}

// handle dispatches on the message type.
func (h *handler) handle(now time.Time, in inbound) outcome {
	req := in.pkt
	mt := req.MessageType()
	c, err := clientOf(req)
	if err == nil && req.OpCode != dhcpv4.OpcodeBootRequest {
		err = fmt.Errorf("op %d is not a request", req.OpCode)
	}
	if err == nil && (mt < dhcpv4.MessageTypeDiscover || mt > dhcpv4.MessageTypeInform) {
		err = fmt.Errorf("message type %d is not a client message", mt)
	}
	if err != nil {
		h.counters.malformed.Add(1)
		return outcome{why: "malformed: " + err.Error(), req: request{mac: string(req.ClientHWAddr)}}
	}
	h.counters.in[mt].Add(1)
	cands := h.candidates(req)
	var out outcome
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		out = h.discover(now, req, c, cands)
	case dhcpv4.MessageTypeRequest:
		out = h.request(now, req, c, cands)
	case dhcpv4.MessageTypeDecline:
		out = h.decline(now, req, c)
	case dhcpv4.MessageTypeRelease:
		out = h.release(now, req, c)
	case dhcpv4.MessageTypeInform:
		out = h.inform(req, cands, in.src)
	default: // OFFER, ACK, NAK come from servers
		out = h.ignore("a server message")
	}
	out.req = requestOf(req, c)
	return out
}

func (h *handler) ignore(why string) outcome {
	h.counters.ignored.Add(1)
	return outcome{why: why}
}

func (h *handler) malformed(why string) outcome {
	h.counters.malformed.Add(1)
	return outcome{why: "malformed: " + why}
}

// clientOf identifies the sender: option 61, else chaddr.
func clientOf(req *dhcpv4.DHCPv4) (client, error) {
	c := client{mac: string(req.ClientHWAddr), clientID: string(req.Options[optClientID])}
	if c.mac == "" && c.clientID == "" {
		return c, fmt.Errorf("no hardware address and no client identifier")
	}
	c.key = clientKey(c.clientID, c.mac)
	if name := req.Options[optHostName]; len(name) > 0 {
		c.hostname = sanitizeHostname(string(name))
	} else if fqdn := req.Options[optClientFQDN]; len(fqdn) > 0 {
		c.hostname = sanitizeHostname(fqdnFirstLabel(fqdn))
	}
	return c, nil
}

// candidates are the pools that may serve the request: for a relayed request
// those whose subnet holds giaddr, else every pool on the wire.
func (h *handler) candidates(req *dhcpv4.DHCPv4) []*pool {
	gi, relayed := ipU32(req.GatewayIPAddr)
	if !relayed {
		return h.onLink
	}
	var out []*pool
	for _, p := range h.alloc.pools {
		if p.onSubnet(gi) {
			out = append(out, p)
		}
	}
	return out
}

func (h *handler) discover(now time.Time, req *dhcpv4.DHCPv4, c client, cands []*pool) outcome {
	if len(cands) == 0 {
		return h.ignore("no pool serves the client's network")
	}
	nowS, nowNs := now.Unix(), now.UnixNano()
	a := h.alloc
	var addr uint32
	var p *pool
	var names []nameChange
	st, free := h.reservation(c, nowS)
	if free {
		if p = onSubnet(cands, st.addr); p == nil {
			return h.ignore("the client's static lease is on another network")
		}
		addr = st.addr
	} else {
		var ok bool
		if addr, p, ok, names = h.choose(req, c, cands, nowS, nowNs); !ok {
			h.counters.exhausted.Add(1)
			r := requestOf(req, c)
			h.event(slog.LevelWarn, evExhausted, "no free address for a client: pools exhausted", r.attrs()...)
			return outcome{names: names, why: "pools exhausted"}
		}
		if o := a.offers[addr]; o != nil && o.key == c.key && o.probing {
			return outcome{names: names, why: "the address for the client is being probed"}
		}
	}
	probe := h.probe && !free && a.byAddr[addr] == nil && a.offers[addr] == nil
	a.hold(addr, c.key, nowNs+int64(h.offerTime))
	a.offers[addr].probing = probe
	r := h.newReply(req, dhcpv4.MessageTypeOffer)
	r.YourIPAddr = u32IP(addr)
	p.opts.apply(r.Options, req.Options[optParamRequest], true)
	name := c.hostname
	if st != nil && st.hostname != "" {
		r.Options[optHostName] = []byte(st.hostname)
		name = st.hostname
	}
	if _, keeps := a.rival(name, st != nil, c.key, addr, nowS); keeps {
		name = ""
	}
	answerFQDN(req, r, name, p.cfg.Domain)
	return h.send(req, r, outcome{names: names, probe: probe})
}

// probed ends the probe of addr: a free address's OFFER may leave; an
// address some host answers for is quarantined like a declined one, and its
// binding is returned for the log.
func (h *handler) probed(now time.Time, addr uint32, holder net.HardwareAddr) *binding {
	taken := holder != nil
	a := h.alloc
	if o := a.offers[addr]; o != nil {
		o.probing = false
		if taken {
			a.dropOffer(o.key)
		}
	}
	if !taken {
		return nil
	}
	h.counters.conflicts.Add(1)
	h.event(slog.LevelWarn, evConflict, "an address with no lease answers ARP: not offered, quarantined", "addr", u32Addr(addr), "holder", macString(holder))
	d := &binding{addr: addr, state: bindDeclined, expires: now.Unix() + int64(h.declineTime.Seconds())}
	a.put(d)
	return d
}

// choose picks an address for a DISCOVER: the client's previous address, its
// held offer, the address it asks for, or the next free one.
func (h *handler) choose(req *dhcpv4.DHCPv4, c client, cands []*pool, nowS, nowNs int64) (uint32, *pool, bool, []nameChange) {
	a := h.alloc
	try := func(addr uint32) *pool {
		if p := inRange(cands, addr); p != nil && a.available(addr, c.key, nowS, nowNs) {
			return p
		}
		return nil
	}
	if b := a.byClient[c.key]; b != nil {
		if p := try(b.addr); p != nil {
			return b.addr, p, true, nil
		}
	}
	if addr, ok := a.offered(c.key, nowNs); ok {
		if p := try(addr); p != nil {
			return addr, p, true, nil
		}
	}
	if addr, ok := optAddr(req, optRequestedIP); ok {
		if p := try(addr); p != nil {
			return addr, p, true, nil
		}
	}
	return a.nextFree(cands, nowS, nowNs)
}

// optAddr reads a 4-byte address option.
func optAddr(req *dhcpv4.DHCPv4, code uint8) (uint32, bool) {
	v := req.Options[code]
	if len(v) != 4 {
		return 0, false
	}
	return ipU32(net.IP(v))
}

// request handles the four REQUEST states of RFC 2131 §4.3.2.
func (h *handler) request(now time.Time, req *dhcpv4.DHCPv4, c client, cands []*pool) outcome {
	sid, hasSID := optAddr(req, optServerID)
	asked, hasAsked := optAddr(req, optRequestedIP)
	ci, hasCI := ipU32(req.ClientIPAddr)
	switch {
	case hasSID: // SELECTING
		if sid != h.serverID {
			h.alloc.dropOffer(c.key)
			return h.ignore("the client chose another server")
		}
		if !hasAsked {
			if !hasCI {
				return h.malformed("a SELECTING REQUEST without the requested address")
			}
			asked = ci
		}
		return h.grant(now, req, c, cands, asked)
	case hasCI: // RENEWING or REBINDING
		return h.grant(now, req, c, cands, ci)
	case hasAsked: // INIT-REBOOT
		return h.grant(now, req, c, cands, asked)
	}
	return h.malformed("a REQUEST with neither a requested address nor ciaddr")
}

// grant ACKs addr for the client when it may have it, else NAKs (or stays
// silent when not authoritative and the client is unknown).
func (h *handler) grant(now time.Time, req *dhcpv4.DHCPv4, c client, cands []*pool, addr uint32) outcome {
	nowS, nowNs := now.Unix(), now.UnixNano()
	a := h.alloc
	prev := a.byClient[c.key]
	known := prev != nil && prev.addr == addr
	refuse := func(why string) outcome {
		if h.authoritative || known {
			return h.nak(req, c, addr, why)
		}
		return h.ignore(why)
	}
	// fixed: the grant is the client's static lease; a static client whose
	// address another client still holds is served from the pools.
	st, fixed := h.reservation(c, nowS)
	p := onSubnet(cands, addr)
	switch {
	case p == nil:
		return refuse(fmt.Sprintf("%s is not on the client's network", u32Addr(addr)))
	case st != nil && !fixed && st.addr == addr:
		return h.nak(req, c, addr, fmt.Sprintf("%s is still leased to another client", u32Addr(addr)))
	case fixed && st.addr != addr:
		return h.nak(req, c, addr, fmt.Sprintf("the client's address is %s", u32Addr(st.addr)))
	case !fixed && inRange(cands, addr) == nil:
		return refuse(fmt.Sprintf("%s is outside every pool", u32Addr(addr)))
	case !fixed && !a.available(addr, c.key, nowS, nowNs):
		return refuse(fmt.Sprintf("%s is not free", u32Addr(addr)))
	}
	if !fixed {
		p = inRange(cands, addr)
	}
	hostname := c.hostname
	if st != nil && st.hostname != "" {
		hostname = st.hostname
	} else if hostname == "" && known {
		hostname = prev.hostname
	}
	hostname, loser := h.claimName(hostname, st != nil, c, addr, nowS)
	var oldName string
	if old := a.byAddr[addr]; old != nil && a.holdsName(old, nowS) {
		oldName = old.hostname
	}
	b := &binding{addr: addr, state: bindActive, expires: nowS + int64(p.opts.lease),
		mac: c.mac, clientID: c.clientID, hostname: hostname, static: fixed}
	a.dropOffer(c.key)
	prevNamed := prev != nil && prev.addr != addr && a.holdsName(prev, nowS)
	out := outcome{commit: []*binding{b}}
	if loser != nil {
		a.put(loser)
		out.commit = append(out.commit, loser)
		out.names = append(out.names, nameChange{host: hostname, addr: u32Addr(loser.addr)})
	}
	moved := a.put(b)
	if moved != nil {
		out.commit = append(out.commit, moved)
		if prevNamed {
			out.names = append(out.names, nameChange{host: moved.hostname, addr: u32Addr(moved.addr)})
		}
	}
	if oldName != "" && oldName != hostname {
		out.names = append(out.names, nameChange{host: oldName, addr: u32Addr(addr)})
	}
	if hostname != "" && hostname != oldName {
		out.names = append(out.names, nameChange{publish: true, host: hostname, addr: u32Addr(addr)})
	}
	r := h.newReply(req, dhcpv4.MessageTypeAck)
	r.YourIPAddr = u32IP(addr)
	r.ClientIPAddr = req.ClientIPAddr
	p.opts.apply(r.Options, req.Options[optParamRequest], true)
	if st != nil && st.hostname != "" {
		r.Options[optHostName] = []byte(st.hostname)
	}
	answerFQDN(req, r, hostname, p.cfg.Domain)
	ack := requestOf(req, c)
	ack.asked, ack.hostname = u32Addr(addr), hostname
	out.ack, out.lease = &ack, time.Duration(p.opts.lease)*time.Second
	return h.send(req, r, out)
}

// nak refuses a REQUEST for addr.
func (h *handler) nak(req *dhcpv4.DHCPv4, c client, addr uint32, why string) outcome {
	h.counters.naks.Add(1)
	rq := requestOf(req, c)
	rq.asked = u32Addr(addr)
	h.event(slog.LevelInfo, evNak, "DHCPNAK: request refused", rq.attrs("reason", why)...)
	r := h.newReply(req, dhcpv4.MessageTypeNak)
	r.Options[optMessage] = []byte(why)
	if _, relayed := ipU32(req.GatewayIPAddr); relayed {
		r.SetBroadcast()
	}
	return h.send(req, r, outcome{why: why})
}

// decline quarantines an address the client found in use (RFC 2131 §4.3.3).
// Only the client the address is bound or offered to may decline it.
func (h *handler) decline(now time.Time, req *dhcpv4.DHCPv4, c client) outcome {
	if sid, ok := optAddr(req, optServerID); ok && sid != h.serverID {
		return h.ignore("a DECLINE for another server")
	}
	addr, ok := optAddr(req, optRequestedIP)
	if !ok {
		return h.malformed("no address in the request")
	}
	nowS := now.Unix()
	a := h.alloc
	b := a.byAddr[addr]
	mine := b != nil && b.key() == c.key && b.live(nowS)
	if o := a.offers[addr]; o != nil && o.key == c.key {
		mine = true
	}
	if !mine {
		return h.ignore("a DECLINE for an address the client does not hold")
	}
	var out outcome
	if b != nil && a.holdsName(b, nowS) {
		out.names = append(out.names, nameChange{host: b.hostname, addr: u32Addr(addr)})
	}
	a.dropOffer(c.key)
	d := &binding{addr: addr, state: bindDeclined, expires: nowS + int64(h.declineTime.Seconds()), mac: c.mac}
	a.put(d)
	if prev := a.byClient[c.key]; prev != nil && prev.addr == addr {
		delete(a.byClient, c.key)
	}
	h.counters.declines.Add(1)
	rq := requestOf(req, c)
	rq.asked = u32Addr(addr)
	h.event(slog.LevelWarn, evDecline, "DHCPDECLINE: a client declined its address (in use by another host): quarantined",
		rq.attrs("until", time.Unix(d.expires, 0).UTC())...)
	out.commit = []*binding{d}
	out.why = "declined"
	return out
}

// release ends the client's lease early; the binding is remembered, expired,
// so the client gets the address again if it is still free.
func (h *handler) release(now time.Time, req *dhcpv4.DHCPv4, c client) outcome {
	if sid, ok := optAddr(req, optServerID); ok && sid != h.serverID {
		return h.ignore("a RELEASE for another server")
	}
	addr, ok := ipU32(req.ClientIPAddr)
	if !ok {
		return h.malformed("no address in the request")
	}
	nowS := now.Unix()
	b := h.alloc.byAddr[addr]
	if b == nil || b.key() != c.key || !b.live(nowS) {
		return h.ignore("a RELEASE for an address the client does not hold")
	}
	var out outcome
	if h.alloc.holdsName(b, nowS) {
		out.names = append(out.names, nameChange{host: b.hostname, addr: u32Addr(addr)})
	}
	r := *b
	r.state, r.expires = bindExpired, nowS
	h.alloc.put(&r)
	out.commit = []*binding{&r}
	out.why = "released"
	rq := requestOf(req, c)
	rq.asked, rq.hostname = u32Addr(addr), b.hostname
	h.event(slog.LevelInfo, evRelease, "DHCPRELEASE: a client released its address", rq.attrs()...)
	return out
}

// newReply starts a reply: header fields from the request, message type,
// server identifier, and the echoed client identifier (RFC 6842) and relay
// agent information (RFC 3046).
func (h *handler) newReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	r := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: req.GatewayIPAddr,
		ClientHWAddr:  req.ClientHWAddr,
		Options:       dhcpv4.Options{optMessageType: {byte(mt)}, optServerID: u32IP(h.serverID)},
	}
	if v := req.Options[optClientID]; len(v) > 0 {
		r.Options[optClientID] = v
	}
	if v := req.Options[optRelayAgentInfo]; len(v) > 0 {
		r.Options[optRelayAgentInfo] = v
	}
	return r
}

// send addresses the reply per RFC 2131 §4.1: to the relay, where the
// message chose (INFORM), by broadcast for a NAK, to ciaddr, by broadcast
// when the client asks for it, else unicast to yiaddr at chaddr, as a frame
// built for chaddr, since the client cannot answer ARP for an address it
// does not have yet. Then it encodes the reply.
func (h *handler) send(req, r *dhcpv4.DHCPv4, out outcome) outcome {
	out.reply = r
	gi, relayed := ipU32(req.GatewayIPAddr)
	ci, hasCI := ipU32(req.ClientIPAddr)
	yi, hasYI := ipU32(r.YourIPAddr)
	switch {
	case relayed:
		out.to = netip.AddrPortFrom(u32Addr(gi), serverPort)
	case out.to.IsValid(): // chosen by the message (INFORM)
	case r.MessageType() == dhcpv4.MessageTypeNak:
		out.to = netip.AddrPortFrom(bcast4, clientPort)
	case hasCI:
		out.to = netip.AddrPortFrom(u32Addr(ci), clientPort)
	case req.IsBroadcast() || !hasYI || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6:
		out.to = netip.AddrPortFrom(bcast4, clientPort)
	default:
		out.to = netip.AddrPortFrom(u32Addr(yi), clientPort)
		out.direct = true
	}
	out.wire = h.encode(req, r)
	return out
}
