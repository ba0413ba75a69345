package dhcp

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"gatewayd/lab"
)

// reserve adds a static lease of addr for mac, as a reload would.
func reserve(mac, addr string) func(*Config) {
	return func(c *Config) {
		c.Static = append(c.Static, Static{MAC: mustMAC(mac), Address: mustAddr(addr), Hostname: "reserved"})
	}
}

func TestStaticLeaseWaitsForTheHolder(t *testing.T) {
	D, R := dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest
	rel := dhcpv4.MessageTypeRelease
	OFFER, ACK, NAK := dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak
	for _, end := range []string{"released", "expired"} {
		t.Run(end, func(t *testing.T) {
			hs := newHarness(t, testConfig())
			var logs strings.Builder
			hs.h.log = logTo(&logs)
			run := func(steps ...step) {
				t.Helper()
				for i, st := range steps {
					hs.now = hs.now.Add(st.advance)
					o := hs.send(st.pkt())
					var got dhcpv4.MessageType
					if o.reply != nil {
						got = o.reply.MessageType()
					}
					if got != st.reply || st.yiaddr != "" && !o.reply.YourIPAddr.Equal(ip(st.yiaddr)) {
						t.Fatalf("step %d: reply %v %v, want %v %s (why %q)", i, got, o.reply, st.reply, st.yiaddr, o.why)
					}
					if st.check != nil {
						st.check(t, o)
					}
				}
			}
			pending := func() []PendingReservation {
				return hs.h.alloc.pending([]*staticLease{hs.h.alloc.statics[clientKey("", string(mustMAC(macB)))]}, hs.now.Unix())
			}
			run(step{pkt: msg(R, macA, wantIP("192.0.2.102"), host("holder")), reply: ACK, yiaddr: "192.0.2.102"})
			hs.configure(testConfig(reserve(macB, "192.0.2.102")))

			// The reserved client gets a pool address while the holder's
			// lease is live; asking for its reserved address is refused.
			run(
				step{pkt: msg(D, macB), reply: OFFER, yiaddr: "192.0.2.100", check: func(t *testing.T, o sent) {
					if o.reply.HostName() != "reserved" {
						t.Errorf("the static lease's host name is not sent meanwhile: %q", o.reply.HostName())
					}
				}},
				step{pkt: msg(R, macB, wantIP("192.0.2.100"), sid(srv)), reply: ACK, yiaddr: "192.0.2.100", check: func(t *testing.T, o sent) {
					if o.commit[0].static {
						t.Error("the pool address was recorded as the static lease")
					}
				}},
				step{pkt: msg(R, macB, wantIP("192.0.2.102")), reply: NAK},
				step{pkt: msg(D, macB, wantIP("192.0.2.102")), reply: OFFER, yiaddr: "192.0.2.100"},
			)
			if !strings.Contains(logs.String(), "address conflict") || strings.Count(logs.String(), "address conflict") != 1 ||
				!strings.Contains(logs.String(), "addr=192.0.2.102 mac=02:00:00:00:00:02 holder=\"MAC 02:00:00:00:00:01\"") {
				t.Errorf("the conflict is not logged once, naming both clients:\n%s", logs.String())
			}
			if p := pending(); len(p) != 1 || p[0].Address != mustAddr("192.0.2.102") || p[0].MAC != macB || p[0].Holder.MAC != macA {
				t.Errorf("pending reservations %+v", p)
			}
			// The holder renews normally, and rediscovers its address.
			run(
				step{advance: 30 * time.Minute, pkt: msg(R, macA, ci("192.0.2.102")), reply: ACK, yiaddr: "192.0.2.102"},
				step{pkt: msg(D, macA), reply: OFFER, yiaddr: "192.0.2.102"},
				step{pkt: msg(R, macB, ci("192.0.2.100")), reply: ACK, yiaddr: "192.0.2.100"},
			)
			if end == "released" {
				run(step{pkt: msg(rel, macA, ci("192.0.2.102"), sid(srv))})
			} else {
				hs.now = hs.now.Add(61 * time.Minute)
			}
			if p := pending(); len(p) != 0 {
				t.Errorf("pending after the holder's lease %s: %+v", end, p)
			}
			// The reserved client's renewal is NAKed; it rediscovers and
			// gets its address; the old holder does not get it back.
			run(
				step{pkt: msg(R, macB, ci("192.0.2.100")), reply: NAK},
				step{pkt: msg(D, macB), reply: OFFER, yiaddr: "192.0.2.102"},
				step{pkt: msg(R, macB, wantIP("192.0.2.102"), sid(srv)), reply: ACK, yiaddr: "192.0.2.102", check: func(t *testing.T, o sent) {
					if !o.commit[0].static || len(o.commit) != 2 {
						t.Errorf("commit %+v: want the static lease and the end of the pool lease", o.commit)
					}
				}},
				step{pkt: msg(R, macA, wantIP("192.0.2.102")), reply: NAK},
			)
			if !strings.Contains(logs.String(), "free again") {
				t.Errorf("the end of the conflict is not logged:\n%s", logs.String())
			}
		})
	}
}

func TestStaticConflicts(t *testing.T) {
	s, err := New(Options{StateDir: t.TempDir(), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Import([]Lease{{Address: mustAddr("192.0.2.102"), MAC: macA, Expires: time.Now().Add(time.Hour), State: StateActive}}); err != nil {
		t.Fatal(err)
	}
	c := netConfig(reserve(macB, "192.0.2.102"), reserve(macA, "192.0.2.103"))
	got := s.StaticConflicts(c)
	if len(got) != 1 || got[0].Address != mustAddr("192.0.2.102") || got[0].MAC != macB || got[0].Holder.MAC != macA || got[0].Holder.State != StateActive {
		t.Errorf("conflicts %+v, want 192.0.2.102 held by %s", got, macA)
	}
	// The holder's own reservation is no conflict.
	if got := s.StaticConflicts(netConfig(reserve(macA, "192.0.2.102"))); len(got) != 0 {
		t.Errorf("the holder's own static lease conflicts: %+v", got)
	}
	if got := s.StaticConflicts(nil); got != nil {
		t.Errorf("a stopped role reports %+v", got)
	}
}

// TestStaticLeaseConflictWithClients: a dynamic udhcpc holds .100, a
// reload reserves .100 for a second udhcpc, which gets another address;
// the holder renews .100; once it releases, the reserved client's renewal
// is NAKed and it binds .100.
func TestStaticLeaseConflictWithClients(t *testing.T) {
	n := newTestNet(t, "udhcpc")
	const holderMAC, reservedMAC = "02:00:00:00:08:01", "02:00:00:00:08:02"
	start := func(name, mac string) (*exec.Cmd, string) {
		ns := n.client(name, mac)
		dir := t.TempDir()
		env := filepath.Join(dir, "env")
		cmd, err := ns.Start(t.Context(), "udhcpc", "-f", "-i", "eth0", "-s", clientScript(t, dir, env), "-t", "5", "-T", "1")
		if err != nil {
			t.Fatal(err)
		}
		return cmd, env
	}
	signal := func(cmd *exec.Cmd, sig syscall.Signal) {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	bound := func(env, reasons, want string) {
		t.Helper()
		lab.Eventually(t, 15*time.Second, func() error {
			e, err := readEnv(env, reasons)
			if err != nil {
				return err
			}
			if e["ip"] != want {
				return fmt.Errorf("%s %s, want %s", reasons, e["ip"], want)
			}
			return nil
		})
	}
	holder, holderEnv := start("holder", holderMAC)
	bound(holderEnv, "bound", "192.0.2.100")

	n.cfg = netConfig(reserve(reservedMAC, "192.0.2.100"))
	if got := n.srv.StaticConflicts(n.cfg); len(got) != 1 || got[0].Holder.MAC != holderMAC {
		t.Fatalf("StaticConflicts before the reload: %+v", got)
	}
	n.set(n.cfg)
	reserved, reservedEnv := start("reserved", reservedMAC)
	bound(reservedEnv, "bound", "192.0.2.101")
	if p := n.srv.Status().Pending; len(p) != 1 || p[0].Address != mustAddr("192.0.2.100") || p[0].MAC != reservedMAC {
		t.Errorf("status pending %+v", p)
	}

	signal(holder, syscall.SIGUSR1) // renew
	bound(holderEnv, "renew", "192.0.2.100")
	if l, ok := n.lease("192.0.2.100"); !ok || l.MAC != holderMAC {
		t.Errorf("after the holder's renewal .100 is %+v", l)
	}

	signal(holder, syscall.SIGUSR2) // release
	lab.Eventually(t, 5*time.Second, func() error {
		if l, ok := n.lease("192.0.2.100"); ok {
			return fmt.Errorf(".100 still %+v", l)
		}
		return nil
	})
	signal(reserved, syscall.SIGUSR1) // renew: NAK, then DISCOVER
	bound(reservedEnv, "bound", "192.0.2.100")
	if l, ok := n.lease("192.0.2.100"); !ok || l.MAC != reservedMAC {
		t.Errorf(".100 is %+v, want the reserved client's", l)
	}
	if p := n.srv.Status().Pending; len(p) != 0 {
		t.Errorf("still pending: %+v", p)
	}
	if got := n.names.get("reserved"); got != netip.MustParseAddr("192.0.2.100") {
		t.Errorf("the static name is published as %v", got)
	}
}
