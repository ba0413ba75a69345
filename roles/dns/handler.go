package dns

import (
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

const (
	// udpSize is the EDNS buffer size we advertise and the most we send a
	// client over UDP (the DNS flag day 2020 value, which avoids
	// fragmentation).
	udpSize = 1232
	// readBuffer is the listener's UDP read buffer (dns.Server.UDPSize):
	// larger than udpSize so a query with big EDNS options still parses.
	readBuffer = 4096
)

// handler is the dns.Handler the listeners call: it parses the request,
// runs the current pipeline and finalizes the reply.
type handler struct{ s *Server }

func (h handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now() // the listener has read the query: its arrival, near enough
	client, tcp := clientAddr(w.RemoteAddr())
	var m *dns.Msg
	by := byServer
	switch h.s.checkHeader(r.Response, r.Opcode, len(r.Question), len(r.Answer), len(r.Ns), len(r.Extra)) {
	case dns.MsgIgnore:
	case dns.MsgReject:
		m = h.s.errorReply(r.MsgHdr, r.Question, dns.RcodeFormatError, client)
	case dns.MsgRejectNotImplemented:
		m = h.s.errorReply(r.MsgHdr, r.Question, dns.RcodeNotImplemented, client)
	default:
		m, by, _ = h.s.respond(client, tcp, r, false)
	}
	if m == nil {
		return
	}
	if err := w.WriteMsg(m); err != nil {
		h.s.log.Debug("writing a reply", "addr", w.RemoteAddr().String(), "err", err)
		return
	}
	h.s.lat.shared.observe(by, time.Since(start), 1)
}

// respond answers one parsed query from client; a nil reply means nothing
// is sent. With inline set it must not block: a query that needs an
// upstream stops where it would wait and comes back with slow set, to be
// run again (inline clear) on a goroutine of its own. respond never
// panics: a panic in a stage is counted and answered SERVFAIL. by is the
// stage that answered (byNone for no reply, and for a panic's).
func (s *Server) respond(client netip.Addr, tcp bool, r *dns.Msg, inline bool) (m *dns.Msg, by stageID, slow bool) {
	m, by, slow, _ = s.respondOn(nil, client, tcp, r, inline)
	return m, by, slow
}

// respondOn is respond on the UDP read loop l (nil: none), which forwards
// a query without waiting: such a query comes back parked, without a reply
// yet; the loop sends it when the upstreams have answered.
func (s *Server) respondOn(l *loop, client netip.Addr, tcp bool, r *dns.Msg, inline bool) (m *dns.Msg, by stageID, slow bool, pk *parked) {
	p := s.pipe.Load()
	var req *request
	defer func() {
		if v := recover(); v != nil {
			m = s.panicReply(r, v)
			by, slow, pk = byNone, false, nil
			if req != nil && req.parked != nil {
				// Parked before the panic: the loop still settles it (its
				// flight, its counters) but sends nothing, having no client
				// address (salen 0); the client has this SERVFAIL.
				req.parked.pipe = p
			}
		}
	}()
	if m := precheck(r); m != nil {
		s.counters.count(byServer, m.Rcode)
		m.RecursionAvailable = p.serves(client)
		p.logQuestion(client, r.Question, m.Rcode, byServer)
		return m, byServer, false, nil
	}
	req = newRequest(r, client, tcp)
	req.inline, req.loop = inline, l
	if p == nil {
		return nil, byNone, false, nil // stopped between the read and now
	}
	m = p.first.serve(s.ctx, req)
	switch {
	case req.slow:
		return nil, byNone, true, nil
	case req.parked != nil:
		req.parked.pipe = p
		return nil, byNone, false, req.parked
	}
	m = s.settle(p, req, m)
	return m, req.by, false, nil
}

// panicReply counts and logs a panic answering r, and is the SERVFAIL the
// client gets instead.
func (s *Server) panicReply(r *dns.Msg, v any) *dns.Msg {
	s.counters.panics.Add(1)
	s.log.Error("panic answering a query", "err", v)
	m := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	m.Extra = nil
	return m
}

// settle counts and logs m, the reply of pipeline p to req, and makes it
// ready for the wire (finish). It returns nil when nothing is to be sent:
// for a stage's nil, and for a UDP query whose deadline passed with every
// upstream silent. That client asks again by itself (every stub does, and
// a retry kicks a query still in flight); a SERVFAIL would only stop it
// from asking, as dnsmasq's silence does not.
func (s *Server) settle(p *pipeline, req *request, m *dns.Msg) *dns.Msg {
	if req.timedOut && !req.tcp {
		m, req.by = nil, byNone
	}
	s.counters.count(req.by, rcodeOf(m))
	if p.qlog != nil {
		p.qlog.query(req.client, req.name, req.q.Qtype, rcodeOf(m), req.by)
	}
	if m == nil {
		return nil
	}
	s.finish(req, m)
	return m
}

// precheck answers what the pipeline must not see: more than one OPT
// record (FORMERR), an EDNS version other than 0 (BADVERS, RFC 6891 §6.1.3),
// zone transfers and classes other than IN (REFUSED, NOTIMP for meta types).
func precheck(r *dns.Msg) *dns.Msg {
	if len(r.Question) != 1 {
		return formErr(r)
	}
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil || o.Hdr.Name != "." {
				return formErr(r)
			}
			opt = o
		}
	}
	if opt != nil && opt.Version() != 0 {
		m := new(dns.Msg).SetReply(r)
		m.Rcode = dns.RcodeBadVers
		m.SetEdns0(udpSize, opt.Do())
		return m
	}
	q := r.Question[0]
	var rcode int
	switch {
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		rcode = dns.RcodeRefused
	case q.Qtype == dns.TypeOPT || q.Qtype == dns.TypeTSIG || q.Qtype == dns.TypeTKEY:
		rcode = dns.RcodeFormatError
	case q.Qtype == dns.TypeMAILA || q.Qtype == dns.TypeMAILB:
		rcode = dns.RcodeNotImplemented
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY:
		rcode = dns.RcodeRefused
	default:
		return nil
	}
	m := new(dns.Msg).SetReply(r)
	m.Rcode = rcode
	if opt != nil {
		m.SetEdns0(udpSize, opt.Do())
	}
	return m
}

func formErr(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.Id, m.Response, m.Opcode = r.Id, true, r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.Question = r.Question[:min(1, len(r.Question))]
	m.Rcode = dns.RcodeFormatError
	return m
}

// errorReply answers a query rejected for its header alone: the ID, the
// opcode, RD, the first question when there is one, and RA for clients
// the server serves (as on every reply to them).
func (s *Server) errorReply(h dns.MsgHdr, q []dns.Question, rcode int, client netip.Addr) *dns.Msg {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Id: h.Id, Opcode: h.Opcode, RecursionDesired: h.RecursionDesired}}
	m.Response, m.Rcode = true, rcode
	m.Question = q[:min(1, len(q))]
	p := s.pipe.Load()
	m.RecursionAvailable = p.serves(client)
	p.logQuestion(client, m.Question, rcode, byServer)
	return m
}

// serves reports whether p answers client, nil p none.
func (p *pipeline) serves(client netip.Addr) bool {
	return p != nil && p.access.permits(client)
}

// finish turns a stage's reply into what goes on the wire: RA for served
// clients, AD only for clients that asked with DO or AD, our OPT record
// for EDNS clients, and, over UDP, an empty answer with TC when it does
// not fit what the client takes.
func (s *Server) finish(req *request, m *dns.Msg) {
	m.Id = req.msg.Id
	m.Response = true
	m.RecursionAvailable = !req.refused
	if !req.do && !req.ad {
		m.AuthenticatedData = false
	}
	m.Extra = withoutOPT(m.Extra)
	if req.edns {
		m.SetEdns0(udpSize, req.do)
	}
	large := len(m.Answer)+len(m.Ns)+len(m.Extra) > 4
	if req.tcp {
		m.Compress = large
		return
	}
	m.Truncate(req.size) // compresses when the whole answer does not fit
	if m.Truncated {
		// Part of an answer is no answer: the client is to ask over TCP,
		// and nothing partial is there for it to use or cache (what
		// unbound and BIND send).
		s.counters.truncated.Add(1)
		m.Answer, m.Ns, m.Extra = nil, nil, nil
		if req.edns {
			m.SetEdns0(udpSize, req.do)
		}
	}
	m.Compress = m.Compress || large
}

// clientAddr reads the client's address and transport from the
// ResponseWriter's remote address.
func clientAddr(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), false
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), true
	}
	return netip.Addr{}, false
}

func rcodeOf(m *dns.Msg) int {
	if m == nil {
		return 0
	}
	return m.Rcode
}

// acceptQuery judges a UDP query by its header (see checkHeader).
func (s *Server) acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	return s.checkHeader(dh.Bits&qr != 0, int(dh.Bits>>11)&0xF, int(dh.Qdcount), int(dh.Ancount), int(dh.Nscount), int(dh.Arcount))
}

// acceptTCP is the TCP listener's MsgAcceptFunc: it ignores responses and
// lets everything else be parsed, so that ServeDNS rejects with the
// question in the reply (dns.Server's own rejects carry none).
func (s *Server) acceptTCP(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		s.counters.count(byNone, 0)
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// checkHeader decides on a query from its header: responses are ignored,
// opcodes other than QUERY get NOTIMP, and anything but one question with
// empty answer and authority sections gets FORMERR. It counts what it
// rejects.
func (s *Server) checkHeader(response bool, opcode, qd, an, ns, ar int) dns.MsgAcceptAction {
	if response {
		s.counters.count(byNone, 0)
		return dns.MsgIgnore
	}
	if opcode != dns.OpcodeQuery {
		s.counters.count(byServer, dns.RcodeNotImplemented)
		return dns.MsgRejectNotImplemented
	}
	if qd != 1 || an != 0 || ns != 0 || ar > 2 {
		s.counters.malformed.Add(1)
		s.counters.count(byServer, dns.RcodeFormatError)
		return dns.MsgReject
	}
	return dns.MsgAccept
}

// invalidQuery is the listeners' MsgInvalidFunc: it counts what did not
// parse (the library answers FORMERR or nothing).
func (s *Server) invalidQuery(m []byte, err error) {
	s.counters.malformed.Add(1)
}
