package firewall

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file turns the model into google/nftables values, expression by
// expression as nft itself encodes them (checked with `nft --debug=netlink`),
// so that `nft list table inet gatewayd` prints the same rules whichever way
// the table was loaded. It is pure: nothing here talks to the kernel.

// elemBudget bounds the encoded size of one set-element message: the element
// list is one netlink attribute, whose length field is 16 bits, and larger
// lists are silently truncated.
const elemBudget = 16 << 10

// encoder encodes one rule at a time, tracking which protocol dependencies
// (meta nfproto, meta l4proto) the rule has already loaded.
type encoder struct {
	setIDs  map[string]uint32 // the batch's ID of each set, for lookups
	nfproto byte
	l4proto byte
}

// exprs encodes a rule's expressions.
func (e *encoder) exprs(r Rule) ([]expr.Any, error) {
	e.nfproto, e.l4proto = 0, 0
	var out []expr.Any
	for _, x := range r.Exprs {
		xs, err := e.expr(x)
		if err != nil {
			return nil, fmt.Errorf("encoding %q: %w", x, err)
		}
		out = append(out, xs...)
	}
	return out, nil
}

// udataFingerprint is the userdata type under which each rule carries its
// fingerprint; nft lists the comment and ignores types it does not know.
const udataFingerprint userdata.Type = 0xe7

// fingerprintVersion changes when the encoding of a rendering changes, so
// that a table written by an older encoder is rewritten.
const fingerprintVersion = "gatewayd rule v1\n"

// ruleUserData is the rule's comment as nft stores it, then the rule's
// fingerprint: a hash of its rendering, which Set reads back to know the
// kernel holds exactly this rule (see plan.go).
func ruleUserData(r Rule) []byte {
	var ud []byte
	if r.Comment != "" {
		ud = userdata.AppendString(ud, userdata.TypeComment, r.Comment)
	}
	sum := sha256.Sum256([]byte(fingerprintVersion + r.String()))
	return userdata.Append(ud, udataFingerprint, sum[:8])
}

func (e *encoder) expr(x Expr) ([]expr.Any, error) {
	switch x := x.(type) {
	case NfProtoIPv4:
		e.nfproto = 0 // an explicit match is always encoded
		return e.needNfproto(unix.NFPROTO_IPV4), nil
	case Addr:
		return e.addr(x)
	case InSet, Vmap:
		return e.lookup(x)
	case Port:
		return e.port(x)
	case ICMPType:
		fam, proto := byte(unix.NFPROTO_IPV4), byte(unix.IPPROTO_ICMP)
		if x.V6 {
			fam, proto = unix.NFPROTO_IPV6, unix.IPPROTO_ICMPV6
		}
		out := append(e.needNfproto(fam), e.needL4proto(proto)...)
		return append(out,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{x.Type}}), nil
	case HopLimit:
		return append(e.needNfproto(unix.NFPROTO_IPV6),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 7, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{x.Value}}), nil
	}
	return plain(x)
}

// plain encodes the matches that need no protocol dependency, then the
// statements.
func plain(x Expr) ([]expr.Any, error) {
	switch x := x.(type) {
	case IifLo:
		return metaCmp(expr.MetaKeyIIF, binaryutil.NativeEndian.PutUint32(1)), nil
	case OifLo:
		return metaCmp(expr.MetaKeyOIF, binaryutil.NativeEndian.PutUint32(1)), nil
	case IifName:
		return metaCmp(expr.MetaKeyIIFNAME, ifname(x.Name)), nil
	case OifName:
		return metaCmp(expr.MetaKeyOIFNAME, ifname(x.Name)), nil
	case CtOriginal:
		return []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // IP_CT_DIR_ORIGINAL
		}, nil
	case CtState:
		return []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(x.Mask), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		}, nil
	case FibSaddrNotLocal:
		return []expr.Any{
			&expr.Fib{Register: 1, FlagSADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		}, nil
	case FibDaddrLocal:
		return []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		}, nil
	}
	return stmt(x)
}

// stmt encodes the statements: what a rule does once it matches.
func stmt(x Expr) ([]expr.Any, error) {
	switch x := x.(type) {
	case SNAT:
		if !x.Addr.Is4() {
			return nil, fmt.Errorf("snat to %v: want an IPv4 address", x.Addr)
		}
		return []expr.Any{
			&expr.Immediate{Register: 1, Data: x.Addr.AsSlice()},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		}, nil
	case Limit:
		return []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(x.Rate), Unit: expr.LimitTimeSecond, Burst: x.Burst}}, nil
	case Counter:
		return []expr.Any{&expr.Objref{Type: counterTypeNumber, Name: x.Name}}, nil
	case Log:
		return []expr.Any{&expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(x.Prefix)}}, nil
	case Masquerade:
		return []expr.Any{&expr.Masq{}}, nil
	case Verdict:
		return verdict(x)
	}
	return nil, fmt.Errorf("no encoding for %T", x)
}

func metaCmp(key expr.MetaKey, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// ifname pads an interface name to IFNAMSIZ, as nft compares it.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func (e *encoder) needNfproto(fam byte) []expr.Any {
	if e.nfproto == fam {
		return nil
	}
	e.nfproto = fam
	return metaCmp(expr.MetaKeyNFPROTO, []byte{fam})
}

func (e *encoder) needL4proto(proto byte) []expr.Any {
	if e.l4proto == proto {
		return nil
	}
	e.l4proto = proto
	return metaCmp(expr.MetaKeyL4PROTO, []byte{proto})
}

// addrPayload loads an address field of IPv4 or IPv6 into register 1.
func (e *encoder) addrPayload(f Field, v6 bool) []expr.Any {
	fam, off, n := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if v6 {
		fam, off, n = unix.NFPROTO_IPV6, 8, 16
	}
	if f == Daddr {
		off += n
	}
	return append(e.needNfproto(fam), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n})
}

func (e *encoder) addr(x Addr) ([]expr.Any, error) {
	if !x.Prefix.IsValid() {
		return nil, fmt.Errorf("invalid prefix")
	}
	p := x.Prefix.Masked()
	out := e.addrPayload(x.Field, p.Addr().Is6())
	if !p.IsSingleIP() {
		mask := netip.PrefixFrom(allOnes(p.Addr().BitLen()), p.Bits()).Masked().Addr().AsSlice()
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()}), nil
}

func allOnes(bits int) netip.Addr {
	b := make([]byte, bits/8)
	for i := range b {
		b[i] = 0xff
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (e *encoder) lookup(x Expr) ([]expr.Any, error) {
	var l expr.Lookup
	var field Field
	switch x := x.(type) {
	case InSet:
		field, l = x.Field, expr.Lookup{SourceRegister: 1, SetName: x.Set, Invert: x.Neg}
	case Vmap:
		field, l = x.Field, expr.Lookup{SourceRegister: 1, SetName: x.Map, IsDestRegSet: true}
	}
	id, ok := e.setIDs[l.SetName]
	if !ok {
		return nil, fmt.Errorf("set %s is not in the ruleset", l.SetName)
	}
	l.SetID = id
	return append(e.addrPayload(field, false), &l), nil
}

func (e *encoder) port(x Port) ([]expr.Any, error) {
	var proto byte
	switch x.Proto {
	case "tcp":
		proto = unix.IPPROTO_TCP
	case "udp":
		proto = unix.IPPROTO_UDP
	default:
		return nil, fmt.Errorf("unknown protocol %q", x.Proto)
	}
	// The destination port, after the source port.
	out := append(e.needL4proto(proto), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	if x.From == x.To {
		return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(x.From)}), nil
	}
	return append(out,
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint16(x.From)},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint16(x.To)}), nil
}

func verdict(v Verdict) ([]expr.Any, error) {
	switch v.Kind {
	case "accept":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, nil
	case "drop":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, nil
	case "jump":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: v.Chain}}, nil
	}
	return nil, fmt.Errorf("unknown verdict %q", v.Kind)
}

// setElements encodes an interval set as nft does: the gap before the first
// prefix closed by an end element at 0.0.0.0, then each prefix as a start
// element (carrying the map's verdict) and an end element one past its last
// address (none when that would pass 255.255.255.255).
func setElements(s Set) []nftables.SetElement {
	var out []nftables.SetElement
	for i, el := range s.Elements {
		p := el.Prefix.Masked()
		start := p.Addr()
		if i == 0 && start != anyAddr {
			out = append(out, nftables.SetElement{Key: anyAddr.AsSlice(), IntervalEnd: true})
		}
		e := nftables.SetElement{Key: start.AsSlice()}
		if s.Map {
			e.VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: el.Jump}
		}
		out = append(out, e)
		if end := lastAddr(p).Next(); end.IsValid() {
			out = append(out, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	if p.Bits() == 0 {
		host = ^uint32(0)
	}
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// chunkElements splits elements into messages that stay under elemBudget.
func chunkElements(els []nftables.SetElement) [][]nftables.SetElement {
	var out [][]nftables.SetElement
	start, size := 0, 0
	for i, el := range els {
		n := 48 + 2*len(el.Key)
		if el.VerdictData != nil {
			n += 32 + len(el.VerdictData.Chain)
		}
		if size+n > elemBudget && i > start {
			out = append(out, els[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(els) {
		out = append(out, els[start:])
	}
	return out
}

// setIDs numbers the sets of r as queueRuleset adds them, so that rule
// lookups name the same IDs batch after batch.
func setIDs(r *Ruleset) map[string]uint32 {
	ids := map[string]uint32{}
	for i, s := range r.Sets {
		ids[s.Name] = uint32(i + 1)
	}
	return ids
}

// ruleEncoder frames NEWRULE messages itself and marshals each distinct
// expression (in its dependency state) once through google/nftables: a large
// ruleset repeats most expressions, and marshalling dominates encoding.
// TestRuleMessagesMatchLibrary checks the bytes against the library's own.
type ruleEncoder struct {
	enc   encoder
	cache map[exprKey]encodedExpr
	buf   []byte // the expressions of the rule being encoded
}

type exprKey struct {
	x                Expr
	nfproto, l4proto byte
}

type encodedExpr struct {
	attrs            []byte // NFTA_LIST_ELEM attributes
	nfproto, l4proto byte   // the dependency state after it
}

func newRuleEncoder(r *Ruleset) *ruleEncoder {
	return &ruleEncoder{enc: encoder{setIDs: setIDs(r)}, cache: map[exprKey]encodedExpr{}}
}

// ruleMessages encodes the rules of r's chains that only names (all of them
// when only is nil), in chain order.
func ruleMessages(r *Ruleset, only map[string]bool) ([]netlink.Message, error) {
	re := newRuleEncoder(r)
	var out []netlink.Message
	for _, c := range r.Chains {
		if only != nil && !only[c.Name] {
			continue
		}
		for i, rl := range c.Rules {
			m, err := re.message(c.Name, rl)
			if err != nil {
				return nil, fmt.Errorf("chain %s rule %d: %w", c.Name, i+1, err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// message encodes one rule appended to chain, as google/nftables' AddRule.
func (re *ruleEncoder) message(chain string, r Rule) (netlink.Message, error) {
	re.enc.nfproto, re.enc.l4proto = 0, 0
	exprs := re.buf[:0]
	for _, x := range r.Exprs {
		key := exprKey{x, re.enc.nfproto, re.enc.l4proto}
		ee, ok := re.cache[key]
		if !ok {
			xs, err := re.enc.expr(x)
			if err != nil {
				return netlink.Message{}, fmt.Errorf("encoding %q: %w", x, err)
			}
			for _, a := range xs {
				b, err := expr.Marshal(unix.NFPROTO_INET, a)
				if err != nil {
					return netlink.Message{}, fmt.Errorf("encoding %q: %w", x, err)
				}
				ee.attrs = appendAttr(ee.attrs, unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM, b)
			}
			ee.nfproto, ee.l4proto = re.enc.nfproto, re.enc.l4proto
			re.cache[key] = ee
		}
		exprs = append(exprs, ee.attrs...)
		re.enc.nfproto, re.enc.l4proto = ee.nfproto, ee.l4proto
	}
	re.buf = exprs
	if len(exprs) > 0xffff-4 {
		return netlink.Message{}, fmt.Errorf("rule %q is too large for one netlink attribute", r)
	}
	ud := ruleUserData(r)
	data := make([]byte, 0, 4+8+len(Table)+8+len(chain)+4+len(exprs)+8+len(ud))
	data = append(data, unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0)
	data = appendAttr(data, unix.NFTA_RULE_TABLE, []byte(Table+"\x00"))
	data = appendAttr(data, unix.NFTA_RULE_CHAIN, []byte(chain+"\x00"))
	data = appendAttr(data, unix.NLA_F_NESTED|unix.NFTA_RULE_EXPRESSIONS, exprs)
	if ud != nil {
		data = appendAttr(data, unix.NFTA_RULE_USERDATA, ud)
	}
	return netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWRULE),
			Flags: netlink.Request | netlink.Create | unix.NLM_F_APPEND,
		},
		Data: data,
	}, nil
}

// appendAttr appends one netlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	n := 4 + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for ; n%4 != 0; n++ {
		b = append(b, 0)
	}
	return b
}
