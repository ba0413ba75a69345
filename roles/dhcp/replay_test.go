package dhcp

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/replay.golden from the current handler")

// TestReplay drives the handler with a long, seeded stream of requests of
// every kind (fresh and returning clients, static leases, relayed ones,
// every REQUEST state, RELEASE, DECLINE, INFORM, option 57, 81, 82, 61,
// parameter lists that overflow the reply, repeated option instances,
// malformed packets) on a clock that lets leases expire, and checks that
// every outcome (the reply's bytes, where it goes, what is written to the
// lease log, the name changes, why there is no reply) is the one pinned in
// testdata/replay.golden: the handler's behaviour does not change when its
// code does.
func TestReplay(t *testing.T) {
	path := filepath.Join("testdata", "replay.golden")
	got := replay(t)
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for sc.Scan() {
		if i >= len(got) {
			t.Fatalf("the golden file has more than the %d steps of the replay", len(got))
		}
		if sc.Text() != got[i] {
			t.Fatalf("step %d differs:\ngot  %s\nwant %s\n(outcome: %s)", i, got[i], sc.Text(), replayDetail[i])
		}
		i++
	}
	if i != len(got) {
		t.Fatalf("the golden file has %d steps, the replay %d", i, len(got))
	}
}

// replayDetail keeps each step's full outcome, to show a differing one.
var replayDetail []string

const replaySteps = 6000

// replay runs the stream and returns one line per step: its number and a
// hash of its outcome (the full outcome is in replayDetail).
func replay(t *testing.T) []string {
	c := testConfig(func(c *Config) {
		c.Pools[0].Options = append(c.Pools[0].Options,
			Option{Code: 224, Value: []byte(strings.Repeat("x", 250))},
			Option{Code: 225, Value: []byte(strings.Repeat("y", 300))},
			Option{Code: 226, Value: []byte("z"), Always: true})
	})
	hs := newHarness(t, c)
	rnd := rand.New(rand.NewPCG(14, 2026))
	g := &replayGen{rnd: rnd, offered: map[int]netip.Addr{}, bound: map[int]netip.Addr{}}
	replayDetail = replayDetail[:0]
	var out []string
	for i := range replaySteps {
		if i == replaySteps/2 {
			hs.configure(testConfig(func(c *Config) { c.Authoritative = false }))
		}
		hs.now = hs.now.Add(time.Duration(rnd.IntN(300)) * time.Second)
		if rnd.IntN(40) == 0 {
			hs.now = hs.now.Add(time.Duration(rnd.IntN(3)) * time.Hour)
		}
		who, b := g.packet()
		o := hs.h.handleBytes(hs.now, b, netip.MustParseAddrPort("192.0.2.77:68"))
		g.learn(who, o)
		d := describeOutcome(o)
		replayDetail = append(replayDetail, d)
		sum := sha256.Sum256([]byte(d))
		out = append(out, fmt.Sprintf("%d %x", i, sum[:8]))
	}
	var leases []string
	for _, l := range hs.h.alloc.bindings() {
		leases = append(leases, string(encodeRecord(nil, l)))
	}
	cs := hs.cnt.snapshot()
	end := fmt.Sprintf("leases %s counters %v", strings.Join(leases, ""), cs)
	replayDetail = append(replayDetail, end)
	sum := sha256.Sum256([]byte(end))
	return append(out, fmt.Sprintf("end %x", sum[:8]))
}

// describeOutcome renders what the server does with an outcome.
func describeOutcome(o outcome) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "wire=%x to=%s direct=%v probe=%v why=%q", o.wire, o.to, o.direct, o.probe, replayWhy(o.why))
	for _, b := range o.commit {
		fmt.Fprintf(&sb, " commit=%q", encodeRecord(nil, b))
	}
	for _, n := range o.names {
		fmt.Fprintf(&sb, " name=%v/%s/%s", n.publish, n.host, n.addr)
	}
	return sb.String()
}

// replayWhy is the reason for no reply, with the words of a parse error
// left out: they are the parser's, not the handler's decisions.
func replayWhy(why string) string {
	for _, parse := range []string{"too short", "magic cookie", "collecting options", "shorter than", "runs past", "no length"} {
		if strings.Contains(why, parse) {
			return "malformed: the packet does not parse"
		}
	}
	return why
}

// replayGen makes the stream's packets: clients 0..39 by MAC (client 0 is
// the static printer), some with a client id (client 39 is the static
// client id).
type replayGen struct {
	rnd     *rand.Rand
	offered map[int]netip.Addr // each client's last offer
	bound   map[int]netip.Addr // each client's last ACK
	lastWho int
}

const replayClients = 40

func (g *replayGen) mac(who int) []byte {
	if who == 0 {
		return []byte{2, 0, 0, 0, 0, 0xaa}
	}
	return []byte{2, 0, 0, 0, 1, byte(who)}
}

// learn remembers the addresses offered and granted, so later requests
// name them.
func (g *replayGen) learn(who int, o outcome) {
	if len(o.wire) < fixedLen+cookieLen || who < 0 {
		return
	}
	yi, _ := netip.AddrFromSlice(o.wire[16:20])
	list, _, err := parseWire(o.wire)
	if err != nil || len(list) == 0 || list[0].code != optMessageType || len(list[0].val) != 1 {
		return
	}
	switch list[0].val[0] {
	case 2: // OFFER
		g.offered[who] = yi
	case 5: // ACK
		if !yi.IsUnspecified() {
			g.bound[who] = yi
		}
	case 6: // NAK
		delete(g.bound, who)
	}
}

// packet returns the next packet and which client sent it (-1 for none).
func (g *replayGen) packet() (int, []byte) {
	r := g.rnd
	who := r.IntN(replayClients)
	if r.IntN(3) == 0 {
		who = g.lastWho // a client's exchanges come in runs
	}
	g.lastWho = who
	p := &rawMsg{op: 1, htype: 1, chaddr: g.mac(who), xid: r.Uint32()}
	if r.IntN(50) == 0 {
		p.htype = 6
	}
	if r.IntN(60) == 0 {
		p.chaddr = append(p.chaddr, 0, 0)
	}
	if r.IntN(6) == 0 {
		p.flags = 0x8000
	}
	relayed := r.IntN(5) == 0
	if relayed {
		p.giaddr = netip.MustParseAddr("198.51.100.1")
		if r.IntN(10) == 0 {
			p.giaddr = netip.MustParseAddr("203.0.113.1")
		}
		if r.IntN(2) == 0 {
			p.opt(optRelayAgentInfo, 1, 4, 'p', 'o', 'r', 't')
		}
	}
	if who == replayClients-1 {
		p.opt(optClientID, 1, 2, 0, 0, 0, 0, 0xbb)
	} else if who%7 == 3 {
		p.opt(optClientID, 0xff, byte(who), 9)
	}
	mt := g.messageType()
	p.opt(optMessageType, mt)
	g.commonOptions(p)
	switch mt {
	case 1: // DISCOVER
		if a, ok := g.bound[who]; ok && r.IntN(2) == 0 {
			p.opt(optRequestedIP, a.AsSlice()...)
		}
	case 3: // REQUEST
		g.request(p, who)
	case 4, 7: // DECLINE, RELEASE
		a, ok := g.bound[who]
		if !ok {
			a = g.randomAddr()
		}
		if mt == 4 {
			p.opt(optRequestedIP, a.AsSlice()...)
		} else {
			p.ciaddr = a
		}
		if r.IntN(3) > 0 {
			p.opt(optServerID, 192, 0, 2, 2)
		}
	case 8: // INFORM
		p.ciaddr = g.randomAddr()
	}
	b := p.bytes(r.IntN(30) != 0)
	switch r.IntN(80) {
	case 0:
		b = b[:r.IntN(len(b))]
	case 1:
		b[fixedLen] ^= 0xff // the magic cookie
	case 2:
		b = append(b[:len(b)-1], 61) // an option code without its length
	case 3:
		b = append(b[:len(b)-1], 61, 40, 1) // an option longer than the packet
	case 4:
		b[0] = 2 // a reply, not a request
	}
	return who, b
}

func (g *replayGen) messageType() byte {
	switch n := g.rnd.IntN(100); {
	case n < 40:
		return 1
	case n < 80:
		return 3
	case n < 85:
		return 4
	case n < 92:
		return 7
	case n < 97:
		return 8
	case n < 98:
		return 2
	default:
		return byte(g.rnd.IntN(20))
	}
}

func (g *replayGen) randomAddr() netip.Addr {
	switch g.rnd.IntN(4) {
	case 0:
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(8 + g.rnd.IntN(14))})
	case 1:
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(g.rnd.IntN(256))})
	}
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(98 + g.rnd.IntN(14))})
}

// request fills a REQUEST in one of the states of RFC 2131 §4.3.2.
func (g *replayGen) request(p *rawMsg, who int) {
	r := g.rnd
	switch r.IntN(6) {
	case 0, 1: // SELECTING the offer
		a, ok := g.offered[who]
		if !ok {
			a = g.randomAddr()
		}
		p.opt(optServerID, 192, 0, 2, 2)
		if r.IntN(15) > 0 {
			p.opt(optRequestedIP, a.AsSlice()...)
		}
	case 2: // SELECTING another server
		p.opt(optServerID, 192, 0, 2, 9)
		p.opt(optRequestedIP, g.randomAddr().AsSlice()...)
	case 3: // RENEWING
		a, ok := g.bound[who]
		if !ok {
			a = g.randomAddr()
		}
		p.ciaddr = a
	case 4: // INIT-REBOOT
		a, ok := g.bound[who]
		if !ok || r.IntN(4) == 0 {
			a = g.randomAddr()
		}
		p.opt(optRequestedIP, a.AsSlice()...)
	default: // neither
	}
}

var replayNames = []string{"pc", "Laptop_1", "printer", "localhost", "a.b.c", "phone", "-x-", "ÿ", strings.Repeat("n", 70)}

// commonOptions adds what clients send with any message: a parameter
// request list, a host name or FQDN, a maximum message size.
func (g *replayGen) commonOptions(p *rawMsg) {
	r := g.rnd
	if r.IntN(4) > 0 {
		codes := []byte{1, 3, 6, 12, 15, 28, 42, 51, 54, 58, 59, 81, 119, 121, 224, 225, 226, 252, 250}
		r.Shuffle(len(codes), func(i, j int) { codes[i], codes[j] = codes[j], codes[i] })
		prl := codes[:r.IntN(len(codes))]
		if r.IntN(8) == 0 && len(prl) > 2 { // in two instances (RFC 3396)
			p.opt(optParamRequest, prl[:2]...)
			prl = prl[2:]
		}
		p.opt(optParamRequest, prl...)
	}
	switch r.IntN(6) {
	case 0, 1:
		p.opt(optHostName, []byte(replayNames[r.IntN(len(replayNames))])...)
	case 2:
		name := replayNames[r.IntN(len(replayNames))]
		flags := byte(r.IntN(16))
		v := []byte{flags, 0, 0}
		if flags&fqdnE != 0 {
			v = append(v, byte(len(name)))
			v = append(append(v, name...), 0)
		} else {
			v = append(v, name...)
		}
		p.opt(optClientFQDN, v...)
	}
	if r.IntN(4) == 0 {
		size := []uint16{0, 300, 576, 700, 1000, 1500, 2000}[r.IntN(7)]
		p.opt(optMaxMessageSize, byte(size>>8), byte(size))
	}
	if r.IntN(10) == 0 {
		p.opt(optPad)
	}
}

// rawMsg builds a request's bytes without the library.
type rawMsg struct {
	op, htype       byte
	chaddr          []byte
	xid             uint32
	flags           uint16
	ciaddr, giaddr  netip.Addr
	opts            [][]byte
	sname, bootFile string
}

func (m *rawMsg) opt(code byte, v ...byte) {
	if code == optPad {
		m.opts = append(m.opts, []byte{0})
		return
	}
	m.opts = append(m.opts, append([]byte{code, byte(len(v))}, v...))
}

func (m *rawMsg) bytes(end bool) []byte {
	b := make([]byte, fixedLen, 400)
	b[0], b[1], b[2] = m.op, m.htype, byte(len(m.chaddr))
	binary.BigEndian.PutUint32(b[4:], m.xid)
	binary.BigEndian.PutUint16(b[10:], m.flags)
	if m.ciaddr.IsValid() {
		copy(b[12:16], m.ciaddr.AsSlice())
	}
	if m.giaddr.IsValid() {
		copy(b[24:28], m.giaddr.AsSlice())
	}
	copy(b[28:44], m.chaddr)
	copy(b[44:108], m.sname)
	copy(b[108:236], m.bootFile)
	b = append(b, magicCookie[:]...)
	for _, o := range m.opts {
		b = append(b, o...)
	}
	if end {
		b = append(b, optEnd)
	}
	return b
}

// TestReplayDeterministic: the replay gives the same outcomes twice (no
// map order leaks into them), or the golden file would pin noise.
func TestReplayDeterministic(t *testing.T) {
	a := replay(t)
	da := slices.Clone(replayDetail)
	b := replay(t)
	if !slices.Equal(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("step %d differs between two replays:\n%s\n%s", i, da[i], replayDetail[i])
			}
		}
	}
}
