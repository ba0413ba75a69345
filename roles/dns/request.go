package dns

import (
	"context"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// stage is one step of the pipeline. It answers the request or hands it to
// the next stage. A nil reply means "send nothing" (the query is dropped).
// Stages treat req.msg as read-only; the reply they return is theirs to give
// away (the handler finalizes it in place).
type stage interface {
	serve(ctx context.Context, req *request) *dns.Msg
}

// stageFunc adapts a function to stage (tests use it as a terminal stage).
type stageFunc func(ctx context.Context, req *request) *dns.Msg

func (f stageFunc) serve(ctx context.Context, req *request) *dns.Msg { return f(ctx, req) }

// request is one client question on its way through the pipeline.
type request struct {
	msg    *dns.Msg     // as the client sent it
	q      dns.Question // msg.Question[0]
	name   string       // q.Name in lower case: the key every stage matches on
	client netip.Addr
	tcp    bool

	edns bool // the client sent an OPT record
	do   bool // DNSSEC OK
	cd   bool // checking disabled
	ad   bool // the client asked for the AD bit
	size int  // the largest UDP reply the client takes

	// inline requests are answered on the read loop and must not wait:
	// a stage that would wait sets slow and returns nil instead. With loop
	// set, the loop forwards it without waiting: the forwarder sets parked
	// and the stages above it return nil, leaving it their part of the
	// work when the answer comes (loopforward.go).
	inline, slow bool
	loop         *loop
	parked       *parked
	// timedOut is set when the query's deadline passed with every upstream
	// silent: a UDP client is sent nothing (it asks again).
	timedOut bool

	// set along the way
	refused bool    // the access stage refused the client: RA stays clear
	by      stageID // the stage that produced the reply
	route   *route  // the upstreams the route stage chose
	matched bool    // match holds the conditional route (see conditional)
	match   *route
	// kick receives when another client asks the same question while this
	// one waits upstream (a client's retry): the forwarder asks again.
	kick <-chan struct{}
}

// newRequest reads the fields the pipeline needs from a parsed query with
// exactly one question.
func newRequest(m *dns.Msg, client netip.Addr, tcp bool) *request {
	req := &request{msg: m, q: m.Question[0], client: client, tcp: tcp, cd: m.CheckingDisabled, ad: m.AuthenticatedData}
	req.name = lowerName(req.q.Name)
	req.size = dns.MinMsgSize
	if opt := m.IsEdns0(); opt != nil {
		req.edns = true
		req.do = opt.Do()
		req.size = clampSize(int(opt.UDPSize()))
	}
	return req
}

// clampSize bounds a client's advertised UDP size to [512, udpSize].
func clampSize(n int) int {
	return max(dns.MinMsgSize, min(n, udpSize))
}

// lowerName returns a fully qualified name in lower case, allocating only
// when it has upper-case letters.
func lowerName(name string) string {
	name = dns.Fqdn(name)
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// reply starts a response to req: same ID, question, opcode, RD and CD.
func (req *request) reply(rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req.msg)
	m.Rcode = rcode
	return m
}

// inDomain reports whether name is domain or below it; both are lower-case
// fully qualified names.
func inDomain(name, domain string) bool {
	if domain == "." {
		return true
	}
	if !strings.HasSuffix(name, domain) {
		return false
	}
	return len(name) == len(domain) || name[len(name)-len(domain)-1] == '.'
}

// derive is a request for another name (a CNAME target) with the same
// type, client and flags.
func (req *request) derive(name string) *request {
	m := new(dns.Msg)
	m.Id = req.msg.Id
	m.RecursionDesired = true
	m.CheckingDisabled = req.cd
	m.Question = []dns.Question{{Name: name, Qtype: req.q.Qtype, Qclass: req.q.Qclass}}
	sub := *req
	sub.msg, sub.q, sub.name = m, m.Question[0], lowerName(name)
	sub.route, sub.matched, sub.match, sub.kick = nil, false, nil, nil
	sub.loop, sub.parked = nil, nil // the caller waits for its answer: a worker's job
	return &sub
}
