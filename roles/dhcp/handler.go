package dhcp

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
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

	// Scratch of one request at a time (the server's lock guards it): the
	// request read in place, the reply being built, its layout, the
	// candidate pools.
	in     packet
	rep    reply
	order  []uint8
	layout layout
	cands  []*pool
	// wires hands out the buffers replies are encoded into; nil: new ones.
	wires *wirePool
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

// outcome is what the server does about a request.
type outcome struct {
	mt     uint8  // the reply's message type; 0: no reply
	wire   []byte // the reply as sent: fitted to the client, options ordered
	from   uint32 // the reply's source address: the server identifier
	yiaddr uint32
	to     netip.AddrPort
	// direct sends the reply as a frame to chaddr (packet socket): a
	// unicast to a client that cannot answer ARP for yiaddr yet.
	direct bool
	hw     [6]byte // chaddr, for direct
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
// The bindings the request put are rolled back on a panic: their records
// are never queued, and memory must not hold what the disk never will.
func (h *handler) handleBytes(now time.Time, b []byte, src netip.AddrPort) (out outcome) {
	a := h.alloc
	a.track, a.made = true, a.made[:0]
	defer func() {
		r := recover()
		if r != nil {
			a.rollback(a.made, now.Unix())
		}
		clear(a.made)
		a.track = false
		if r != nil {
			h.counters.panics.Add(1)
			h.log.Error("handling a DHCP packet failed; dropped", "err", fmt.Sprint(r), "src", src)
			out = outcome{why: "panic"}
		}
	}()
	if err := h.in.parse(b); err != nil {
		h.counters.malformed.Add(1)
		return outcome{why: "malformed: " + err.Error()}
	}
	return h.handle(now, &h.in, src)
}

// handle dispatches on the message type.
func (h *handler) handle(now time.Time, req *packet, src netip.AddrPort) outcome {
	mt := req.messageType()
	c, err := clientOf(req)
	if err == nil && req.op != opBootRequest {
		err = fmt.Errorf("op %d is not a request", req.op)
	}
	if err == nil && (mt < discoverType || mt > informType) {
		err = fmt.Errorf("message type %d is not a client message", mt)
	}
	if err != nil {
		h.counters.malformed.Add(1)
		return outcome{why: "malformed: " + err.Error(), req: request{mac: string(req.chaddr)}}
	}
	h.counters.in[mt].Add(1)
	cands := h.candidates(req)
	var out outcome
	switch mt {
	case discoverType:
		out = h.discover(now, req, c, cands)
	case requestType:
		out = h.request(now, req, c, cands)
	case declineType:
		out = h.decline(now, req, c)
	case releaseType:
		out = h.release(now, req, c)
	case informType:
		out = h.inform(req, cands, src)
	default: // OFFER, ACK, NAK come from servers
		out = h.ignore("a server message")
	}
	out.req = requestOf(req, c)
	return out
}

// opBootRequest is the op of every request (RFC 951).
const opBootRequest = 1

func (h *handler) ignore(why string) outcome {
	h.counters.ignored.Add(1)
	return outcome{why: why}
}

func (h *handler) malformed(why string) outcome {
	h.counters.malformed.Add(1)
	return outcome{why: "malformed: " + why}
}

// clientOf identifies the sender: option 61, else chaddr.
func clientOf(req *packet) (client, error) {
	c := client{mac: string(req.chaddr), clientID: string(req.opts.get(optClientID))}
	if c.mac == "" && c.clientID == "" {
		return c, fmt.Errorf("no hardware address and no client identifier")
	}
	c.key = clientKey(c.clientID, c.mac)
	if name := req.opts.get(optHostName); len(name) > 0 {
		c.hostname = sanitizeHostname(string(name))
	} else if fqdn := req.opts.get(optClientFQDN); len(fqdn) > 0 {
		c.hostname = sanitizeHostname(fqdnFirstLabel(fqdn))
	}
	return c, nil
}

// candidates are the pools that may serve the request: for a relayed request
// those whose subnet holds giaddr, else every pool on the wire. The list is
// valid while the request is handled.
func (h *handler) candidates(req *packet) []*pool {
	if req.giaddr == 0 {
		return h.onLink
	}
	out := h.cands[:0]
	for _, p := range h.alloc.pools {
		if p.onSubnet(req.giaddr) {
			out = append(out, p)
		}
	}
	h.cands = out
	return out
}

func (h *handler) discover(now time.Time, req *packet, c client, cands []*pool) outcome {
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
	r := &h.rep
	r.start(req, offerType, h.serverID)
	r.yiaddr = addr
	p.opts.apply(r, req.opts.get(optParamRequest), true)
	name := c.hostname
	if st != nil && st.hostname != "" {
		r.opts.set(optHostName, r.str(st.hostname))
		name = st.hostname
	}
	if _, keeps := a.rival(name, st != nil, c.key, addr, nowS); keeps {
		name = ""
	}
	answerFQDN(req, r, name, p.cfg.Domain)
	return h.send(req, r, outcome{names: names, probe: probe})
}

// probed ends the probe of addr: a free address's OFFER may leave (offer);
// an address some host answers for is quarantined like a declined one, and
// its binding is returned for the log. An address a client holds live by
// now (a lease made meanwhile) is neither offered nor quarantined: its
// lease stands, whoever answered the probe, and the client whose DISCOVER
// it was asks again.
func (h *handler) probed(now time.Time, addr uint32, holder net.HardwareAddr) (rec *binding, offer bool) {
	a := h.alloc
	o := a.offers[addr]
	if o != nil {
		o.probing = false
	}
	if b := a.byAddr[addr]; b != nil && b.live(now.Unix()) {
		if o != nil {
			a.dropOffer(o.key)
		}
		return nil, false
	}
	if holder == nil {
		return nil, true
	}
	if o != nil {
		a.dropOffer(o.key)
	}
	h.counters.conflicts.Add(1)
	h.event(slog.LevelWarn, evConflict, "an address with no lease answers ARP: not offered, quarantined", "addr", u32Addr(addr), "holder", macString(holder))
	d := &binding{addr: addr, state: bindDeclined, expires: now.Unix() + int64(h.declineTime.Seconds())}
	a.put(d)
	return d, false
}

// probeAbandoned forgets the offer whose probe of addr ended without a
// verdict (the sockets were replaced meanwhile): its OFFER never left, and
// the client's next DISCOVER is handled again rather than dropped as being
// probed.
func (h *handler) probeAbandoned(addr uint32) {
	if o := h.alloc.offers[addr]; o != nil && o.probing {
		h.alloc.dropOffer(o.key)
	}
}

// choose picks an address for a DISCOVER: the client's previous address, its
// held offer, the address it asks for, or the next free one.
func (h *handler) choose(req *packet, c client, cands []*pool, nowS, nowNs int64) (uint32, *pool, bool, []nameChange) {
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
	if addr, ok := req.addrOption(optRequestedIP); ok {
		if p := try(addr); p != nil {
			return addr, p, true, nil
		}
	}
	return a.nextFree(cands, nowS, nowNs)
}

// request handles the four REQUEST states of RFC 2131 §4.3.2.
func (h *handler) request(now time.Time, req *packet, c client, cands []*pool) outcome {
	sid, hasSID := req.addrOption(optServerID)
	asked, hasAsked := req.addrOption(optRequestedIP)
	ci, hasCI := req.ciaddr, req.ciaddr != 0
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
func (h *handler) grant(now time.Time, req *packet, c client, cands []*pool, addr uint32) outcome {
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
	case !fixed && a.probing(addr):
		// Its OFFER has not left: whether some host uses it is not known
		// yet. The client asks again.
		return h.ignore(fmt.Sprintf("%s is being probed", u32Addr(addr)))
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
	r := &h.rep
	r.start(req, ackType, h.serverID)
	r.yiaddr, r.ciaddr = addr, req.ciaddr
	p.opts.apply(r, req.opts.get(optParamRequest), true)
	if st != nil && st.hostname != "" {
		r.opts.set(optHostName, r.str(st.hostname))
	}
	answerFQDN(req, r, hostname, p.cfg.Domain)
	ack := requestOf(req, c)
	ack.asked, ack.hostname = u32Addr(addr), hostname
	out.ack, out.lease = &ack, time.Duration(p.opts.lease)*time.Second
	return h.send(req, r, out)
}

// nak refuses a REQUEST for addr.
func (h *handler) nak(req *packet, c client, addr uint32, why string) outcome {
	h.counters.naks.Add(1)
	rq := requestOf(req, c)
	rq.asked = u32Addr(addr)
	h.event(slog.LevelInfo, evNak, "DHCPNAK: request refused", rq.attrs("reason", why)...)
	r := &h.rep
	r.start(req, nakType, h.serverID)
	r.opts.set(optMessage, r.str(why))
	if req.giaddr != 0 {
		r.flags |= flagBroadcast
	}
	return h.send(req, r, outcome{why: why})
}

// decline quarantines an address the client found in use (RFC 2131 §4.3.3).
// Only the client the address is bound or offered to may decline it.
func (h *handler) decline(now time.Time, req *packet, c client) outcome {
	if sid, ok := req.addrOption(optServerID); ok && sid != h.serverID {
		return h.ignore("a DECLINE for another server")
	}
	addr, ok := req.addrOption(optRequestedIP)
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
func (h *handler) release(now time.Time, req *packet, c client) outcome {
	if sid, ok := req.addrOption(optServerID); ok && sid != h.serverID {
		return h.ignore("a RELEASE for another server")
	}
	addr := req.ciaddr
	if addr == 0 {
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

// send addresses the reply per RFC 2131 §4.1: to the relay, where the
// message chose (INFORM), by broadcast for a NAK, to ciaddr, by broadcast
// when the client asks for it, else unicast to yiaddr at chaddr, as a frame
// built for chaddr, since the client cannot answer ARP for an address it
// does not have yet. Then it encodes the reply.
func (h *handler) send(req *packet, r *reply, out outcome) outcome {
	out.mt, out.from, out.yiaddr = r.mt, h.serverID, r.yiaddr
	switch {
	case req.giaddr != 0:
		out.to = netip.AddrPortFrom(u32Addr(req.giaddr), serverPort)
	case out.to.IsValid(): // chosen by the message (INFORM)
	case r.mt == nakType:
		out.to = netip.AddrPortFrom(bcast4, clientPort)
	case req.ciaddr != 0:
		out.to = netip.AddrPortFrom(u32Addr(req.ciaddr), clientPort)
	case req.broadcast() || r.yiaddr == 0 || req.htype != htypeEthernet || len(req.chaddr) != 6:
		out.to = netip.AddrPortFrom(bcast4, clientPort)
	default:
		out.to = netip.AddrPortFrom(u32Addr(r.yiaddr), clientPort)
		out.direct = true
		out.hw = [6]byte(req.chaddr)
	}
	out.wire = h.encode(req, r)
	return out
}

// htypeEthernet is the hardware type of Ethernet (RFC 1700).
const htypeEthernet = 1
