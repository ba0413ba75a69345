package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// arpProber checks that nobody answers for an address before it is offered
// (probe_before_offer): an RFC 5227 ARP probe (sender IP 0.0.0.0, so no
// neighbour learns anything), and any ARP packet whose sender is the address
// within the wait counts as a conflict. One packet socket on the NIC, one
// reader goroutine for all probes.
type arpProber struct {
	f       *os.File
	ifindex int
	mac     net.HardwareAddr

	mu      sync.Mutex
	waiting map[uint32][]chan struct{}
}

const (
	ethPARP      = 0x0806
	arpHeaderLen = 28
)

// openARP opens the packet socket on ifname; it must run in the NIC's
// network namespace.
func openARP(ifname string) (*arpProber, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("opening ARP socket on %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("opening ARP socket on %s: not an Ethernet interface", ifname)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(ethPARP)))
	if err != nil {
		return nil, fmt.Errorf("opening ARP socket on %s: %w", ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPARP), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding ARP socket to %s: %w", ifname, err)
	}
	p := &arpProber{f: os.NewFile(uintptr(fd), "arp-"+ifname), ifindex: ifi.Index, mac: ifi.HardwareAddr,
		waiting: map[uint32][]chan struct{}{}}
	go p.read()
	return p, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read wakes the probes of every address that shows up as an ARP sender.
func (p *arpProber) read() {
	buf := make([]byte, 1500)
	for {
		n, err := p.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		if n < arpHeaderLen || binary.BigEndian.Uint16(buf[0:2]) != 1 || binary.BigEndian.Uint16(buf[2:4]) != 0x0800 {
			continue
		}
		sender := binary.BigEndian.Uint32(buf[14:18])
		p.mu.Lock()
		for _, ch := range p.waiting[sender] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		p.mu.Unlock()
	}
}

// probe asks who has addr and reports whether anyone answered within wait.
func (p *arpProber) probe(addr uint32, wait time.Duration) (bool, error) {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	p.waiting[addr] = append(p.waiting[addr], ch)
	p.mu.Unlock()
	defer p.forget(addr, ch)

	pkt := make([]byte, arpHeaderLen)
	binary.BigEndian.PutUint16(pkt[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(pkt[2:4], 0x0800) // IPv4
	pkt[4], pkt[5] = 6, 4
	binary.BigEndian.PutUint16(pkt[6:8], 1) // request
	copy(pkt[8:14], p.mac)                  // sender IP stays 0.0.0.0: a probe
	binary.BigEndian.PutUint32(pkt[24:28], addr)
	to := &unix.SockaddrLinklayer{Protocol: htons(ethPARP), Ifindex: p.ifindex, Halen: 6,
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	rc, err := p.f.SyscallConn()
	if err != nil {
		return false, fmt.Errorf("sending an ARP probe for %s: %w", u32Addr(addr), err)
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), pkt, 0, to)
		return serr != unix.EAGAIN
	})
	if err = errors.Join(err, serr); err != nil {
		return false, fmt.Errorf("sending an ARP probe for %s: %w", u32Addr(addr), err)
	}
	select {
	case <-ch:
		return true, nil
	case <-time.After(wait):
		return false, nil
	}
}

func (p *arpProber) forget(addr uint32, ch chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.waiting[addr]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.waiting, addr)
	} else {
		p.waiting[addr] = list
	}
}

func (p *arpProber) close() error { return p.f.Close() }

// probeWait is how long an offer waits for an answer to its ARP probe.
const probeWait = 300 * time.Millisecond

// maxProbes bounds the addresses one DISCOVER may probe before it is
// dropped (the client will ask again).
const maxProbes = 4
