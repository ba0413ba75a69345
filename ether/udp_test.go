package ether

import (
	"bytes"
	"net/netip"
	"testing"
)

// A datagram the kernel sent from 192.168.1.2:67 to 192.168.1.100:68
// (tcpdump -xx on a veth pair), with the UDP checksum tcpdump computed in
// place of the partial one checksum offload leaves in the capture.
const capturedUDP = "02000000000a 02000000000b 0800" +
	"4500 0029 85f7 4000 4011 3116 c0a80102 c0a80164" +
	"0043 0044 0015 d14c" + "68656c6c6f2c20636c69656e74" // "hello, client"

func TestAppendUDPMatchesTheKernel(t *testing.T) {
	want := unhex(t, capturedUDP)
	got, err := appendUDP(nil, mac("02:00:00:00:00:0a"), mac("02:00:00:00:00:0b"),
		netip.MustParseAddrPort("192.168.1.2:67"), netip.MustParseAddrPort("192.168.1.100:68"), []byte("hello, client"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("frame is %d bytes, want %d:\n got %x\nwant %x", len(got), len(want), got, want)
	}
	// The kernel picked IP ID 0x85f7; we send 0, so the header checksum
	// differs too. Everything else, the UDP checksum included, must match.
	ipID, ipSum := headerLen+4, headerLen+10
	for _, i := range []int{ipID, ipID + 1, ipSum, ipSum + 1} {
		got[i], want[i] = 0, 0
	}
	if !bytes.Equal(got, want) {
		t.Errorf("frame\n got %x\nwant %x", got, want)
	}
}

func TestAppendUDPChecksums(t *testing.T) {
	for _, n := range []int{0, 1, 2, 300, 1472} {
		payload := bytes.Repeat([]byte{0xa5}, n)
		b, err := appendUDP(nil, Broadcast, self, netip.MustParseAddrPort("10.0.0.1:67"), netip.MustParseAddrPort("255.255.255.255:68"), payload)
		if err != nil {
			t.Fatal(err)
		}
		ip := b[headerLen:]
		if fold(sum(0, ip[:ipv4HeaderLen])) != 0xffff {
			t.Errorf("%d bytes: IPv4 header checksum does not verify", n)
		}
		udp := ip[ipv4HeaderLen:]
		acc := sum(sum(0, ip[12:16]), ip[16:20]) + protoUDP + uint32(len(udp))
		if fold(sum(acc, udp)) != 0xffff {
			t.Errorf("%d bytes: UDP checksum does not verify", n)
		}
		if !bytes.Equal(udp[udpHeaderLen:], payload) {
			t.Errorf("%d bytes: payload changed", n)
		}
	}
	if _, err := appendUDP(nil, Broadcast, self, netip.MustParseAddrPort("[2001:db8::1]:67"), netip.MustParseAddrPort("10.0.0.2:68"), nil); err == nil {
		t.Error("appendUDP accepted an IPv6 source")
	}
	if _, err := appendUDP(nil, Broadcast, self, netip.MustParseAddrPort("10.0.0.1:67"), netip.MustParseAddrPort("10.0.0.2:68"), make([]byte, 0x10000)); err == nil {
		t.Error("appendUDP accepted 64 KiB of payload")
	}
}
