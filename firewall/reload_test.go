package firewall

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatewayd/lab"
)

// fillerZones are n zones of one /24 each (10.100.0.0/24 on, numbered from
// first), allowed dns and routed to the upstream, so that the sets and maps
// hold hundreds of intervals as at a large site: recreating sets that large,
// as a whole-table rebuild does, loses allowed packets in flight.
func fillerZones(first, n int) []ZoneInfo {
	var out []ZoneInfo
	for i := first; i < first+n; i++ {
		out = append(out, ZoneInfo{
			Name:    fmt.Sprintf("f%04d", i),
			Subnets: subnets(fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256)),
			Forward: []string{"upstream"},
			Access:  seedDNSAccess(),
		})
	}
	return out
}

// reloadPolicies are two versions of a large site that differ in every way
// a reload can: lab gains ssh (a chain refilled); a zone goes and another
// comes (elements of the sets and maps deleted and added, chains and
// counters deleted and added); lan is routed to one more zone (its forward
// chain, on the allowed streams' way, refilled).
func reloadPolicies() (a, b Policy) {
	a = seedPolicy()
	a.Zones = append(a.Zones, fillerZones(0, 300)...)
	b = seedLabSSH()
	b.Zones = append(b.Zones, fillerZones(1, 300)...)
	lan := seedZone(&b, "lan")
	lan.Forward = append(slices.Clone(lan.Forward), "f0150")
	return a, b
}

// sequenced receives numbered datagrams.
type sequenced struct {
	mu   sync.Mutex
	seen map[uint32]bool
}

func receiveSequenced(t *testing.T, ns *lab.Namespace, addr string) *sequenced {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	r := &sequenced{seen: map[uint32]bool{}}
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n == 4 {
				r.mu.Lock()
				r.seen[binary.BigEndian.Uint32(buf)] = true
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// missing lists the numbers up to sent that have not arrived.
func (r *sequenced) missing(sent uint32) []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint32
	for i := uint32(1); i <= sent; i++ {
		if !r.seen[i] {
			out = append(out, i)
		}
	}
	return out
}

func (r *sequenced) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// stream sends numbered datagrams from ns to addr every 2 ms (500 a second)
// until stop closes; sent is the last number sent.
type stream struct {
	sent, failed atomic.Uint32
}

func startStream(t *testing.T, ns *lab.Namespace, addr string, stop <-chan struct{}, wg *sync.WaitGroup) *stream {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		c, err = net.Dial("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := &stream{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer c.Close()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var b [4]byte
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			binary.BigEndian.PutUint32(b[:], s.sent.Load()+1)
			if _, err := c.Write(b[:]); err != nil {
				s.failed.Add(1)
			}
			s.sent.Add(1)
		}
	}()
	return s
}

// TestReloadNeverOpens swaps a large ruleset 100 times between two versions
// while 500 packets a second stream through each of three allowed paths
// (lan → lab forwarded, lan → the dns alias, lan → the upstream NATed) and
// one forbidden pair (lab → lan): not one forbidden packet may pass, and not
// one allowed packet may be lost. The datagrams are numbered and counted at
// the receivers; no reply makes the flows established, so every packet is
// judged by the zone maps and chains being replaced.
func TestReloadNeverOpens(t *testing.T) {
	s := newSite(t)
	forbidden := receiveSequenced(t, s.lan, "0.0.0.0:9999")
	allowed := map[string]*sequenced{
		"lan → lab":            receiveSequenced(t, s.lab, "0.0.0.0:9998"),
		"lan → dns alias":      receiveSequenced(t, s.gw, "192.168.1.3:53"),
		"lan → upstream (NAT)": receiveSequenced(t, s.up, outside+":9997"),
	}
	pa, pb := reloadPolicies()
	a, b := Build(pa), Build(pb)
	if err := s.fw.Set(a); err != nil {
		t.Fatal(err)
	}
	// Warm the neighbour caches on the streams' ways.
	for _, dst := range []string{labClient, "192.168.1.3", outside} {
		expectReach(t, "lan → ping "+dst, ping(s.lan, dst))
	}
	expectReach(t, "lab → ping the router", ping(s.lab, "10.0.0.1"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	streams := map[string]*stream{
		"lan → lab":            startStream(t, s.lan, labClient+":9998", stop, &wg),
		"lan → dns alias":      startStream(t, s.lan, "192.168.1.3:53", stop, &wg),
		"lan → upstream (NAT)": startStream(t, s.lan, outside+":9997", stop, &wg),
	}
	bad := startStream(t, s.lab, lanClient+":9999", stop, &wg)
	start := time.Now()
	for i := range 100 {
		r := a
		if i%2 == 0 {
			r = b
		}
		if err := s.fw.Set(r); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	for name, st := range streams {
		sent := st.sent.Load()
		var lost []uint32
		err := lab.Poll(timeoutCtx(t, 5*time.Second), func() error {
			if lost = allowed[name].missing(sent); len(lost) > 0 {
				return fmt.Errorf("%d missing", len(lost))
			}
			return nil
		})
		t.Logf("%s: %d sent (%d send errors), %d lost", name, sent, st.failed.Load(), len(lost))
		if err != nil || st.failed.Load() > 0 {
			t.Errorf("%s: %d of %d allowed packets lost during the reloads (first %v), %d not sent", name, len(lost), sent, lost[:min(len(lost), 10)], st.failed.Load())
		}
	}
	t.Logf("100 reloads of %d chains and %d rules in %v; forbidden: %d sent, %d passed", len(a.Chains), ruleCount(a), took, bad.sent.Load(), forbidden.count())
	if n := forbidden.count(); n != 0 {
		t.Errorf("%d packets crossed the forbidden pair lab → lan during the reloads", n)
	}
	if bad.sent.Load() == 0 {
		t.Error("the forbidden stream sent nothing")
	}
}

func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
