package dhcp

import (
	"encoding/binary"
	"net/netip"
)

// Option codes the server writes itself.
const (
	optSubnetMask     = 1
	optRouter         = 3
	optDNS            = 6
	optHostName       = 12
	optDomainName     = 15
	optBroadcast      = 28
	optNTP            = 42
	optRequestedIP    = 50
	optLeaseTime      = 51
	optMessageType    = 53
	optServerID       = 54
	optParamRequest   = 55
	optMessage        = 56
	optRenewalTime    = 58
	optRebindingTime  = 59
	optClientID       = 61
	optClientFQDN     = 81
	optRelayAgentInfo = 82
	optClasslessRoute = 121
)

// poolOptions are a pool's options, encoded once per configuration.
type poolOptions struct {
	fixed  []rawOption // sent when always, or when the client asks for them
	routes []byte      // option 121, sent when the client asks for it
	// lease, renew and rebind times in seconds.
	lease, renew, rebind uint32
}

type rawOption struct {
	code   uint8
	val    []byte
	always bool // sent to clients that do not ask for it too
}

// buildPoolOptions encodes p's options: subnet mask, router, DNS servers,
// domain, broadcast address, NTP servers (sent to every client), classless
// routes (with the default route when the pool has a router, since clients
// that take option 121 ignore option 3), then the raw options, which win
// over the built-in ones: a raw option with a built-in code is sent like
// the built-in one, any other only to clients that ask for it, unless
// marked Always.
func buildPoolOptions(p *Pool) *poolOptions {
	o := &poolOptions{
		lease:  seconds(p.LeaseTime.Seconds()),
		renew:  seconds(p.RenewTime.Seconds()),
		rebind: seconds(p.RebindTime.Seconds()),
	}
	add := func(code uint8, val []byte, always bool) {
		for i := range o.fixed {
			if o.fixed[i].code == code {
				o.fixed[i].val = val
				return
			}
		}
		o.fixed = append(o.fixed, rawOption{code, val, always})
	}
	mask := ^uint32(0) << (32 - p.Subnet.Bits())
	add(optSubnetMask, binary.BigEndian.AppendUint32(nil, mask), true)
	if p.Router.IsValid() {
		add(optRouter, addrBytes(p.Router), true)
	}
	if len(p.DNS) > 0 {
		add(optDNS, addrBytes(p.DNS...), true)
	}
	if p.Domain != "" {
		add(optDomainName, []byte(p.Domain), true)
	}
	if p.Broadcast.IsValid() {
		add(optBroadcast, addrBytes(p.Broadcast), true)
	}
	if len(p.NTP) > 0 {
		add(optNTP, addrBytes(p.NTP...), true)
	}
	if len(p.Routes) > 0 {
		var r []byte
		for _, rt := range p.Routes {
			r = appendRoute(r, rt.To, rt.Via)
		}
		if p.Router.IsValid() {
			r = appendRoute(r, netip.PrefixFrom(netip.IPv4Unspecified(), 0), p.Router)
		}
		o.routes = r
	}
	for _, opt := range p.Options {
		switch opt.Code {
		case optPad, optOverload, optMessageType, optServerID, optEnd:
			continue // the role's own
		case optClasslessRoute:
			o.routes = opt.Value
			continue
		}
		add(opt.Code, opt.Value, opt.Always)
	}
	return o
}

func seconds(s float64) uint32 {
	if s >= float64(^uint32(0)) {
		return ^uint32(0)
	}
	return uint32(s)
}

func addrBytes(addrs ...netip.Addr) []byte {
	var b []byte
	for _, a := range addrs {
		v := a.As4()
		b = append(b, v[:]...)
	}
	return b
}

// appendRoute encodes one RFC 3442 route: prefix length, the significant
// octets of the destination, the router.
func appendRoute(b []byte, to netip.Prefix, via netip.Addr) []byte {
	bitsLen := to.Bits()
	b = append(b, byte(bitsLen))
	dst := to.Masked().Addr().As4()
	b = append(b, dst[:(bitsLen+7)/8]...)
	return append(b, addrBytes(via)...)
}

// apply writes the pool's options into a reply's options: those sent to
// every client and those the client asks for in prl. withLease adds the
// lease times (not for INFORM).
func (o *poolOptions) apply(r *reply, prl []byte, withLease bool) {
	var asked [256]bool
	for _, c := range prl {
		asked[c] = true
	}
	for _, f := range o.fixed {
		if f.always || asked[f.code] {
			r.opts.set(f.code, f.val)
		}
	}
	if o.routes != nil && asked[optClasslessRoute] {
		r.opts.set(optClasslessRoute, o.routes)
	}
	if withLease {
		r.opts.set(optLeaseTime, r.seconds(o.lease))
		r.opts.set(optRenewalTime, r.seconds(o.renew))
		r.opts.set(optRebindingTime, r.seconds(o.rebind))
	}
}
