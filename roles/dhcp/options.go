package dhcp

import (
	"encoding/binary"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
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
	fixed  []rawOption // sent in every OFFER and ACK
	routes []byte      // option 121, sent when the client asks for it
	// lease, renew and rebind times in seconds.
	lease, renew, rebind uint32
}

type rawOption struct {
	code uint8
	val  []byte
}

// buildPoolOptions encodes p's options: subnet mask, router, DNS servers,
// domain, broadcast address, NTP servers, classless routes (with the default
// route when the pool has a router, since clients that take option 121 ignore
// option 3), then the raw options, which win over the built-in ones.
func buildPoolOptions(p *Pool) *poolOptions {
	o := &poolOptions{
		lease:  seconds(p.LeaseTime.Seconds()),
		renew:  seconds(p.RenewTime.Seconds()),
		rebind: seconds(p.RebindTime.Seconds()),
	}
	add := func(code uint8, val []byte) {
		for i := range o.fixed {
			if o.fixed[i].code == code {
				o.fixed[i].val = val
				return
			}
		}
		o.fixed = append(o.fixed, rawOption{code, val})
	}
	mask := ^uint32(0) << (32 - p.Subnet.Bits())
	add(optSubnetMask, binary.BigEndian.AppendUint32(nil, mask))
	if p.Router.IsValid() {
		add(optRouter, addrBytes(p.Router))
	}
	if len(p.DNS) > 0 {
		add(optDNS, addrBytes(p.DNS...))
	}
	if p.Domain != "" {
		add(optDomainName, []byte(p.Domain))
	}
	if p.Broadcast.IsValid() {
		add(optBroadcast, addrBytes(p.Broadcast))
	}
	if len(p.NTP) > 0 {
		add(optNTP, addrBytes(p.NTP...))
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
		add(opt.Code, opt.Value)
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

// apply writes the pool's options into a reply. withLease adds the lease
// times (not for INFORM); routes go only to clients that ask for option 121.
func (o *poolOptions) apply(reply, req *dhcpv4.DHCPv4, withLease bool) {
	for _, f := range o.fixed {
		reply.Options[f.code] = f.val
	}
	if o.routes != nil && requested(req, optClasslessRoute) {
		reply.Options[optClasslessRoute] = o.routes
	}
	if withLease {
		reply.Options[optLeaseTime] = binary.BigEndian.AppendUint32(nil, o.lease)
		reply.Options[optRenewalTime] = binary.BigEndian.AppendUint32(nil, o.renew)
		reply.Options[optRebindingTime] = binary.BigEndian.AppendUint32(nil, o.rebind)
	}
}

// requested reports whether the client's parameter request list has code.
func requested(req *dhcpv4.DHCPv4, code uint8) bool {
	for _, c := range req.Options[optParamRequest] {
		if c == code {
			return true
		}
	}
	return false
}
