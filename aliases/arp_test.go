package aliases

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
)

var testMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}

func TestAnnouncementFrame(t *testing.T) {
	b, err := announcement(testMAC, netip.MustParseAddr("192.168.1.3")).marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "ffffffffffff" + "020000000001" + "0806" + // Ethernet: broadcast, from us, ARP
		"0001" + "0800" + "06" + "04" + "0001" + // Ethernet/IPv4, request
		"020000000001" + "c0a80103" + // sender: us, the alias
		"000000000000" + "c0a80103" // target: zero MAC, the alias again (gratuitous)
	if got := hex.EncodeToString(b[:42]); got != want {
		t.Errorf("frame\n got %s\nwant %s", got, want)
	}
	if len(b) != minFrameLen || !bytes.Equal(b[42:], make([]byte, minFrameLen-42)) {
		t.Errorf("frame is %d bytes, want %d with zero padding", len(b), minFrameLen)
	}
}

func TestProbeFrameRoundTrip(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	b, err := probe(testMAC, ip).marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseARP(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Op != arpRequest || !p.SenderIP.IsUnspecified() || p.TargetIP != ip ||
		!bytes.Equal(p.SenderMAC, testMAC) || !bytes.Equal(p.EthDst, broadcastMAC) {
		t.Errorf("parsed probe = %+v", p)
	}
}

func TestHolds(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	reply := arpPacket{Op: arpReply, SenderMAC: other, SenderIP: ip, TargetIP: netip.IPv4Unspecified()}
	tests := []struct {
		name string
		p    arpPacket
		want bool
	}{
		{"reply from the holder", reply, true},
		{"announcement from the holder", announcement(other, ip), true},
		{"another host probing the same address", probe(other, ip), true},
		{"our own probe", probe(testMAC, ip), false},
		{"reply about another address", arpPacket{Op: arpReply, SenderMAC: other, SenderIP: netip.MustParseAddr("10.0.0.2")}, false},
		{"probe for another address", probe(other, netip.MustParseAddr("10.0.0.2")), false},
	}
	for _, tt := range tests {
		if got := tt.p.holds(ip, testMAC); got != tt.want {
			t.Errorf("%s: holds = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseARPRejects(t *testing.T) {
	good, _ := announcement(testMAC, netip.MustParseAddr("10.0.0.1")).marshal()
	ipv4 := bytes.Clone(good)
	ipv4[12], ipv4[13] = 0x08, 0x00
	ipv6 := bytes.Clone(good)
	ipv6[ethHeaderLen+2], ipv6[ethHeaderLen+3] = 0x86, 0xdd
	for name, b := range map[string][]byte{"short": good[:41], "IPv4 frame": ipv4, "ARP for IPv6": ipv6, "empty": nil} {
		if _, err := parseARP(b); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
	if _, err := (arpPacket{EthDst: testMAC[:3]}).marshal(); err == nil {
		t.Error("marshal accepted a 3-byte MAC")
	}
}

func FuzzParseARP(f *testing.F) {
	good, _ := announcement(testMAC, netip.MustParseAddr("10.0.0.1")).marshal()
	f.Add(good)
	f.Add(good[:42])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseARP(b)
		if err != nil {
			return
		}
		out, err := p.marshal()
		if err != nil {
			t.Fatalf("re-marshal of a parsed packet: %v", err)
		}
		if !bytes.Equal(out[:42], b[:42]) {
			t.Fatalf("round trip changed the frame:\n%x\n%x", b[:42], out[:42])
		}
	})
}
