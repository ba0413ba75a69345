package ether

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// Frames captured with `tcpdump -xx` on a veth pair (02:00:00:00:00:0a and
// 02:00:00:00:00:0b), sent by iputils arping and by the kernel.
var captured = []struct {
	name  string
	frame string
	want  ARP
}{
	{
		name:  "probe (arping -D 192.168.1.3)",
		frame: "ffffffffffff02000000000b0806 0001080006040001 02000000000b 00000000 ffffffffffff c0a80103",
		want:  ARP{Op: OpRequest, SenderMAC: mac("02:00:00:00:00:0b"), SenderIP: ip("0.0.0.0"), TargetMAC: Broadcast, TargetIP: ip("192.168.1.3")},
	},
	{
		name:  "the kernel's reply to that probe",
		frame: "02000000000b02000000000a0806 0001080006040002 02000000000a c0a80103 02000000000b 00000000",
		want:  ARP{Op: OpReply, SenderMAC: mac("02:00:00:00:00:0a"), SenderIP: ip("192.168.1.3"), TargetMAC: mac("02:00:00:00:00:0b"), TargetIP: ip("0.0.0.0")},
	},
	{
		name:  "gratuitous request (arping -U 192.168.1.7)",
		frame: "ffffffffffff02000000000b0806 0001080006040001 02000000000b c0a80107 ffffffffffff c0a80107",
		want:  ARP{Op: OpRequest, SenderMAC: mac("02:00:00:00:00:0b"), SenderIP: ip("192.168.1.7"), TargetMAC: Broadcast, TargetIP: ip("192.168.1.7")},
	},
	{
		name:  "gratuitous reply (arping -A 192.168.1.7)",
		frame: "ffffffffffff02000000000b0806 0001080006040002 02000000000b c0a80107 02000000000b c0a80107",
		want:  ARP{Op: OpReply, SenderMAC: mac("02:00:00:00:00:0b"), SenderIP: ip("192.168.1.7"), TargetMAC: mac("02:00:00:00:00:0b"), TargetIP: ip("192.168.1.7")},
	},
	{
		name:  "the kernel resolving 10.0.0.9",
		frame: "ffffffffffff02000000000b0806 0001080006040001 02000000000b 0a000002 000000000000 0a000009",
		want:  ARP{Op: OpRequest, SenderMAC: mac("02:00:00:00:00:0b"), SenderIP: ip("10.0.0.2"), TargetMAC: mac("00:00:00:00:00:00"), TargetIP: ip("10.0.0.9")},
	},
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameARP(a, b ARP) bool {
	return a.Op == b.Op && a.SenderIP == b.SenderIP && a.TargetIP == b.TargetIP &&
		bytes.Equal(a.SenderMAC, b.SenderMAC) && bytes.Equal(a.TargetMAC, b.TargetMAC)
}

func TestParseCapturedFrames(t *testing.T) {
	for _, tt := range captured {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.frame)
			f, err := ParseFrame(b)
			if err != nil || f.EtherType != EtherTypeARP {
				t.Fatalf("ParseFrame = %+v, %v", f, err)
			}
			p, err := ParseARP(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if !sameARP(p, tt.want) {
				t.Errorf("parsed\n got %+v\nwant %+v", p, tt.want)
			}
			// Encoding the parsed packet gives the captured bytes back.
			out, err := p.Append(b[:headerLen:headerLen])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, b) {
				t.Errorf("re-encoded\n got %x\nwant %x", out, b)
			}
		})
	}
}

var self = mac("02:00:00:00:00:01")

func TestProbeAndAnnouncementPackets(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    ARP
		want string
	}{
		// Sender 0.0.0.0, target hardware address zero (RFC 5227 2.1.1).
		{"probe", ProbePacket(self, ip("192.168.1.3")),
			"0001 0800 06 04 0001 020000000001 00000000 000000000000 c0a80103"},
		// Sender and target IP both the address, target hardware zero (2.3).
		{"announcement", AnnouncementPacket(self, ip("192.168.1.3")),
			"0001 0800 06 04 0001 020000000001 c0a80103 000000000000 c0a80103"},
	} {
		b, err := tt.p.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hex.EncodeToString(b), strings.ReplaceAll(tt.want, " ", ""); got != want {
			t.Errorf("%s\n got %s\nwant %s", tt.name, got, want)
		}
	}
}

func TestARPFrame(t *testing.T) {
	b, err := arpFrame(self, AnnouncementPacket(self, ip("192.168.1.3")))
	if err != nil {
		t.Fatal(err)
	}
	want := "ffffffffffff" + "020000000001" + "0806" + // broadcast, from us, ARP
		"0001" + "0800" + "06" + "04" + "0001" + // Ethernet/IPv4, request
		"020000000001" + "c0a80103" + // sender: us, the address
		"000000000000" + "c0a80103" + // target: zero MAC, the address again (gratuitous)
		strings.Repeat("00", minFrameLen-headerLen-arpLen) // padding to the Ethernet minimum
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("frame\n got %s\nwant %s", got, want)
	}
	probe := ProbePacket(self, ip("10.0.0.1"))
	b, err = arpFrame(self, probe)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseARPFrame(b)
	if err != nil || !sameARP(p, probe) {
		t.Errorf("probe frame parsed back as %+v, %v; want %+v", p, err, probe)
	}
	if _, err := arpFrame(self, ARP{SenderMAC: self, TargetMAC: self}); err == nil {
		t.Error("arpFrame accepted a packet without addresses")
	}
}

func TestConflicts(t *testing.T) {
	probed := ip("192.168.1.3")
	other := mac("02:00:00:00:00:99")
	tests := []struct {
		name string
		p    ARP
		want bool
	}{
		{"reply from the holder", ARP{Op: OpReply, SenderMAC: other, SenderIP: probed, TargetIP: ip("0.0.0.0")}, true},
		{"announcement from the holder", AnnouncementPacket(other, probed), true},
		{"the holder asking for another address", ARP{Op: OpRequest, SenderMAC: other, SenderIP: probed, TargetIP: ip("192.168.1.9")}, true},
		{"another host probing the same address", ProbePacket(other, probed), true},
		{"our own probe", ProbePacket(self, probed), false},
		{"our own announcement", AnnouncementPacket(self, probed), false},
		{"a host with an address asking for it", ARP{Op: OpRequest, SenderMAC: other, SenderIP: ip("192.168.1.9"), TargetIP: probed}, false},
		{"a reply about another address", ARP{Op: OpReply, SenderMAC: other, SenderIP: ip("192.168.1.9")}, false},
		{"a probe for another address", ProbePacket(other, ip("192.168.1.9")), false},
		{"a reply addressed to 0.0.0.0 about another address", ARP{Op: OpReply, SenderMAC: other, SenderIP: ip("192.168.1.9"), TargetIP: ip("0.0.0.0")}, false},
	}
	for _, tt := range tests {
		if got := tt.p.Conflicts(probed, self); got != tt.want {
			t.Errorf("%s: Conflicts = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := unhex(t, captured[0].frame)[headerLen:]
	bad := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	for name, b := range map[string][]byte{
		"empty":              nil,
		"short":              good[:arpLen-1],
		"hardware not Ether": bad(1, 6),
		"protocol not IPv4":  bad(2, 0x86),
		"6-byte IPs":         bad(5, 16),
		"8-byte MACs":        bad(4, 8),
	} {
		if _, err := ParseARP(b); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
	if _, err := ParseFrame(make([]byte, headerLen-1)); err == nil {
		t.Error("ParseFrame accepted 13 bytes")
	}
	frame := unhex(t, captured[0].frame)
	if _, err := parseARPFrame(frame); err != nil {
		t.Errorf("parseARPFrame of a captured probe: %v", err)
	}
	ipv4 := bytes.Clone(frame)
	ipv4[12], ipv4[13] = 0x08, 0x00
	if _, err := parseARPFrame(ipv4); !errors.Is(err, ErrNotARP) {
		t.Errorf("parseARPFrame of an IPv4 frame: %v, want ErrNotARP", err)
	}
	if _, err := parseARPFrame(frame[:headerLen+arpLen-1]); err == nil {
		t.Error("parseARPFrame accepted a cut packet")
	}
	if _, err := (ARP{SenderMAC: self[:3], TargetMAC: self}).Append(nil); err == nil {
		t.Error("Append accepted a 3-byte MAC")
	}
	if _, err := ProbePacket(self, ip("2001:db8::1")).Append(nil); err == nil {
		t.Error("Append accepted an IPv6 target")
	}
}

func FuzzParseARP(f *testing.F) {
	for _, c := range captured {
		f.Add(unhex(f, c.frame))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseARPFrame(b)
		if err != nil {
			return
		}
		out, err := p.Append(b[:headerLen:headerLen])
		if err != nil {
			t.Fatalf("re-encoding a parsed packet: %v", err)
		}
		if n := headerLen + arpLen; !bytes.Equal(out, b[:n]) {
			t.Fatalf("round trip changed the frame:\n%x\n%x", b[:n], out)
		}
	})
}
