package dhcp

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"gatewayd/lab"
)

func pub(host, addr string) nameChange {
	return nameChange{publish: true, host: host, addr: netip.MustParseAddr(addr)}
}

func wd(host, addr string) nameChange { return nameChange{host: host, addr: netip.MustParseAddr(addr)} }

func TestDuplicateHostNames(t *testing.T) {
	R, rel := dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease
	ACK := dhcpv4.MessageTypeAck
	none := []nameChange{}
	steps := []step{
		// The first holder keeps the name; the second lease gets none.
		{pkt: msg(R, macA, wantIP("192.0.2.100"), host("laptop")), reply: ACK, commit: 1, names: []nameChange{pub("laptop", "192.0.2.100")}},
		{pkt: msg(R, macB, wantIP("192.0.2.101"), host("laptop")), reply: ACK, commit: 1, names: none},
		{pkt: msg(R, macB, ci("192.0.2.101"), host("laptop")), reply: ACK, commit: 1, names: none},
		{pkt: msg(R, macA, ci("192.0.2.100"), host("laptop")), reply: ACK, commit: 1, names: none},
		// Once the holder's lease ends, the next request takes it.
		{pkt: msg(rel, macA, ci("192.0.2.100"), sid(srv)), commit: 1, names: []nameChange{wd("laptop", "192.0.2.100")}},
		{pkt: msg(R, macB, ci("192.0.2.101"), host("laptop")), reply: ACK, commit: 1, names: []nameChange{pub("laptop", "192.0.2.101")}},
		{pkt: msg(R, macA, wantIP("192.0.2.100"), host("laptop")), reply: ACK, commit: 1, names: none},
		// A static lease's name wins over a dynamic lease holding it.
		{pkt: msg(R, macC, wantIP("192.0.2.102"), host("printer")), reply: ACK, commit: 1, names: []nameChange{pub("printer", "192.0.2.102")}},
		{pkt: msg(R, macS, wantIP("192.0.2.10")), reply: ACK, commit: 2,
			names: []nameChange{wd("printer", "192.0.2.102"), pub("printer", "192.0.2.10")},
			check: func(t *testing.T, o sent) {
				if o.commit[1].addr != addrU32(mustAddr("192.0.2.102")) || o.commit[1].hostname != "" || o.commit[1].state != bindActive {
					t.Errorf("the dynamic lease is not stored without the name: %+v", o.commit[1])
				}
			}},
		{pkt: msg(R, macC, ci("192.0.2.102"), host("printer")), reply: ACK, commit: 1, names: none},
		// An expiry withdraws only a name the lease holds.
		{advance: 2 * time.Hour, pkt: msg(R, macC, wantIP("192.0.2.103")), reply: ACK, commit: 2},
	}
	hs := newHarness(t, testConfig())
	for i, st := range steps {
		hs.now = hs.now.Add(st.advance)
		o := hs.send(st.pkt())
		if o.reply != nil && o.reply.MessageType() != st.reply || o.reply == nil && st.reply != 0 {
			t.Fatalf("step %d: reply %v (why %q)", i, o.reply, o.why)
		}
		if len(o.commit) != st.commit {
			t.Errorf("step %d: %d commits, want %d", i, len(o.commit), st.commit)
		}
		if st.names != nil && !equalNames(o.names, st.names) {
			t.Errorf("step %d: names %+v, want %+v", i, o.names, st.names)
		}
		if st.check != nil {
			st.check(t, o)
		}
	}
	names := hs.h.alloc.sweep(hs.now.Unix(), hs.now.UnixNano())
	// laptop at .101 and printer at .10 expired (1 h leases); .100 and .102
	// held no name.
	slices.SortFunc(names, func(x, y nameChange) int { return x.addr.Compare(y.addr) })
	if want := []nameChange{wd("printer", "192.0.2.10"), wd("laptop", "192.0.2.101")}; !equalNames(names, want) {
		t.Errorf("expiry withdrew %+v, want %+v", names, want)
	}
}

func TestDuplicateHostNamesInAnOldLog(t *testing.T) {
	a := newAllocator(0, 0)
	now := int64(1_700_000_000)
	for _, b := range []*binding{
		{addr: 30, state: bindActive, expires: now + 60, mac: "a", hostname: "dup"},
		{addr: 20, state: bindActive, expires: now + 60, mac: "b", hostname: "dup"},
		{addr: 10, state: bindActive, expires: now + 60, mac: "c", hostname: "static", static: false},
		{addr: 40, state: bindActive, expires: now + 60, mac: "d", hostname: "static", static: true},
	} {
		a.load(b)
	}
	a.settleNames(now)
	if hb := a.nameHolder("dup", now); hb == nil || hb.addr != 20 {
		t.Errorf("dup held by %+v, want the lower address", hb)
	}
	if hb := a.nameHolder("static", now); hb == nil || hb.addr != 40 {
		t.Errorf("static held by %+v, want the static lease", hb)
	}
}

// dnsNames is a fake DNS role: A records (name → addresses) and PTR
// records (address → name), the way roles/dns keeps lease names.
type dnsNames struct {
	mu  sync.Mutex
	a   map[string][]netip.Addr
	ptr map[netip.Addr]string
}

func (d *dnsNames) PublishLease(host string, addr netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.ptr[addr]; ok {
		d.a[old] = slices.DeleteFunc(d.a[old], func(x netip.Addr) bool { return x == addr })
	}
	d.ptr[addr] = host
	d.a[host] = append(d.a[host], addr)
}

func (d *dnsNames) WithdrawLease(host string, addr netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ptr[addr] == host {
		delete(d.ptr, addr)
		d.a[host] = slices.DeleteFunc(d.a[host], func(x netip.Addr) bool { return x == addr })
	}
}

func (d *dnsNames) lookup(host string) ([]netip.Addr, map[netip.Addr]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ptr := map[netip.Addr]string{}
	for a, h := range d.ptr {
		ptr[a] = h
	}
	return slices.Clone(d.a[host]), ptr
}

// TestDuplicateHostNamesWithClients: two udhcpc clients send the host name
// "laptop"; the first keeps A and PTR, the second gets neither until the
// first releases and the second renews.
func TestDuplicateHostNamesWithClients(t *testing.T) {
	n := newTestNet(t, "udhcpc")
	dns := &dnsNames{a: map[string][]netip.Addr{}, ptr: map[netip.Addr]string{}}
	n.sink = dns
	n.restart()
	udhcpc := func(ns *lab.Namespace, args ...string) string {
		dir := t.TempDir()
		env := filepath.Join(dir, "env")
		ns.MustRun(t, append([]string{"udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", clientScript(t, dir, env), "-t", "5", "-T", "1", "-x", "hostname:laptop"}, args...)...)
		return envOf(t, env, "bound")["ip"]
	}
	first, second := n.client("first", "02:00:00:00:09:01"), n.client("second", "02:00:00:00:09:02")
	addr1 := udhcpc(first)
	addr2 := udhcpc(second)
	a, ptr := dns.lookup("laptop")
	if len(a) != 1 || a[0].String() != addr1 || ptr[mustAddr(addr1)] != "laptop" || ptr[mustAddr(addr2)] != "" {
		t.Errorf("laptop A %v, PTR %v; want only %s", a, ptr, addr1)
	}
	// The first releases (SIGUSR2); the second's next request takes the
	// name. udhcpc unicasts the RELEASE and removes the address at once: it
	// must know the server's MAC already, or the packet is lost waiting for
	// ARP.
	if err := first.Ping(t.Context(), mustAddr(srv)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	cmd, err := first.Start(t.Context(), "udhcpc", "-f", "-i", "eth0", "-s", clientScript(t, dir, env), "-t", "5", "-T", "1", "-x", "hostname:laptop", "-r", addr1)
	if err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 10*time.Second, func() error {
		_, err := readEnv(env, "bound")
		return err
	})
	if err := cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, func() error {
		if a, _ := dns.lookup("laptop"); len(a) != 0 {
			return fmt.Errorf("laptop still %v", a)
		}
		return nil
	})
	if got := udhcpc(second, "-r", addr2); got != addr2 {
		t.Fatalf("the second client renewed to %s, want %s", got, addr2)
	}
	a, ptr = dns.lookup("laptop")
	if len(a) != 1 || a[0].String() != addr2 || ptr[mustAddr(addr2)] != "laptop" || ptr[mustAddr(addr1)] != "" {
		t.Errorf("after the release laptop A %v, PTR %v; want %s", a, ptr, addr2)
	}
}
