package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// google/nftables marshals the messages well, but its Flush asks for an
// acknowledgement (and, for rules, an echo) of every message and reads them
// back one recvmsg at a time: with thousands of rules that is most of the
// apply time, and a receive buffer too small for them loses acknowledgements
// (ENOBUFS) after the kernel committed. So the library only marshals (into a
// capturing fake connection) and this file sends the batch as nft does: one
// sendmsg, no echo, an acknowledgement requested for the last message only.
// The kernel processes a batch inside sendmsg and always reports errors, so
// when the last acknowledgement arrives every error is already queued before
// it.

// batchTimeout bounds the wait for the kernel's answer to a batch.
const batchTimeout = 30 * time.Second

// sockBuf is the send and receive buffer of the netlink socket. A batch goes
// to the kernel in one sendmsg, which must fit the send buffer (thousands of
// rules are megabytes); a refused batch can answer with an error per message.
const sockBuf = 64 << 20

// nlSocket is a NETLINK_NETFILTER socket, in the namespace it was opened in.
//
// It is never re-dialled after an error: a new socket would land in the
// namespace of whichever thread happened to run that call, not necessarily
// the one Open ran in. A failed exchange (a timeout, a receive buffer
// overrun, an answer that does not decode) instead resyncs the socket: it
// drops the answers left unread, and every exchange ignores answers whose
// sequence number is not its own, so a late answer cannot be taken for the
// next request's. A socket broken for good is the caller's to replace:
// Close the Firewall and Open another from the right namespace.
type nlSocket struct {
	conn *netlink.Conn
	raw  syscall.RawConn
	seq  uint32
	buf  []byte
}

// dialNetfilter opens the socket in the calling thread's network namespace.
func dialNetfilter() (*nlSocket, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("opening a netfilter netlink socket: %w", err)
	}
	if err := bigBuffers(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	raw, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return &nlSocket{conn: c, raw: raw, seq: uint32(time.Now().Unix()), buf: make([]byte, 64<<10)}, nil
}

func (s *nlSocket) Close() error { return s.conn.Close() }

// bigBuffers enlarges the socket buffers past the system maximum when
// allowed (root), and as far as the maximum otherwise.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], sockBuf); e != nil {
				if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], sockBuf); e != nil {
					serr = e
				}
			}
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("enlarging the netlink socket buffers: %w", serr)
	}
	return nil
}

// capture runs fill against a google/nftables connection that sends nothing
// and returns the messages fill queued, without the batch begin and end.
func capture(fill func(*nftables.Conn) error) ([]netlink.Message, error) {
	var got []netlink.Message
	ack := []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 4)}}
	cc, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		got = append(got, req...)
		return ack, nil
	}))
	if err != nil {
		return nil, err
	}
	if err := fill(cc); err != nil {
		return nil, err
	}
	if err := cc.Flush(); err != nil {
		return nil, err
	}
	if len(got) < 2 {
		return nil, nil
	}
	return got[1 : len(got)-1], nil
}

// batchError is the kernel's answer to one message of a batch.
type batchError struct {
	Index int // into the messages; -1 for the batch as a whole
	Errno syscall.Errno
}

// sendBatch sends msgs as one nftables batch and waits for the kernel's
// verdict. It returns the errors the kernel reported, by message.
func (s *nlSocket) sendBatch(msgs []netlink.Message) ([]batchError, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	base := s.seq + 1
	s.seq += uint32(len(msgs)) + 2
	size := 0
	for _, m := range msgs {
		size += nlAlign(16 + len(m.Data))
	}
	b := make([]byte, 0, size+2*20)
	b = appendMsg(b, unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, base, batchHeader())
	for i, m := range msgs {
		flags := uint16(m.Header.Flags) &^ (unix.NLM_F_ACK | unix.NLM_F_ECHO)
		if i == len(msgs)-1 {
			flags |= unix.NLM_F_ACK
		}
		b = appendMsg(b, uint16(m.Header.Type), flags, base+1+uint32(i), m.Data)
	}
	b = appendMsg(b, unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, base+uint32(len(msgs))+1, batchHeader())
	if err := s.write(b); err != nil {
		return nil, fmt.Errorf("sending a batch of %d messages (%d bytes): %w", len(msgs), len(b), err)
	}

	last := base + uint32(len(msgs))
	var errs []batchError
	deadline := time.Now().Add(batchTimeout)
	for {
		replies, err := s.read(deadline)
		if err != nil {
			return errs, s.afterFailure(fmt.Errorf("reading the kernel's answer to a batch: %w", err))
		}
		for _, r := range replies {
			seq := r.Header.Seq
			// Differences, so that a sequence number wrapping past zero
			// still falls inside the batch.
			if r.Header.Type != unix.NLMSG_ERROR || len(r.Data) < 4 || seq-base > last-base {
				continue
			}
			errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(r.Data[:4])))
			if errno != 0 {
				errs = append(errs, batchError{Index: int(seq-base) - 1, Errno: errno})
			}
			// The last message's answer comes after every other one; an
			// error on the batch begin can be all there is.
			if seq == last || (seq == base && errno != 0) {
				return errs, nil
			}
		}
	}
}

func batchHeader() []byte {
	return []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

func appendMsg(b []byte, typ, flags uint16, seq uint32, data []byte) []byte {
	n := 16 + len(data)
	b = binary.NativeEndian.AppendUint32(b, uint32(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, data...)
	for i := n; i < nlAlign(n); i++ {
		b = append(b, 0)
	}
	return b
}

func (s *nlSocket) write(b []byte) error {
	var werr error
	err := s.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), b)
		return werr != unix.EAGAIN
	})
	return errors.Join(err, werr)
}

// read returns the messages of one datagram.
func (s *nlSocket) read(deadline time.Time) ([]syscall.NetlinkMessage, error) {
	if err := s.conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	var n int
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), s.buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	return syscall.ParseNetlinkMessage(s.buf[:n])
}

// dump sends a dump request of type typ (an NFT_MSG_GET*) for the inet
// family and calls fn with the attributes of each answer.
func (s *nlSocket) dump(typ uint16, attrs []netlink.Attribute, fn func(*netlink.AttributeDecoder) error) error {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return err
	}
	s.seq++
	seq := s.seq
	req := appendMsg(nil, unix.NFNL_SUBSYS_NFTABLES<<8|typ, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq,
		append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, data...))
	if err := s.write(req); err != nil {
		return err
	}
	if err := s.readDump(seq, fn); err != nil {
		return s.afterFailure(err) // the rest of the dump may still be queued
	}
	return nil
}

// readDump reads the answers to dump request seq up to its end.
func (s *nlSocket) readDump(seq uint32, fn func(*netlink.AttributeDecoder) error) error {
	deadline := time.Now().Add(batchTimeout)
	for {
		msgs, err := s.read(deadline)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data[:4]))); errno != 0 {
						return errno
					}
				}
				return nil
			}
			if len(m.Data) < 4 {
				continue
			}
			ad, err := netlink.NewAttributeDecoder(m.Data[4:])
			if err != nil {
				return err
			}
			if err := fn(ad); err != nil {
				return err
			}
		}
	}
}

// afterFailure resyncs the socket after an exchange failed with err, and
// returns err, with the resync's own error if it failed too.
func (s *nlSocket) afterFailure(err error) error {
	if rerr := s.resync(); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// resync drops every answer queued on the socket, without waiting, so the
// next exchange starts clean. The read deadline of the failed exchange may
// have passed: it is cleared first, or the read would not even be tried.
func (s *nlSocket) resync() error {
	if err := s.conn.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("resyncing the netfilter socket: %w", err)
	}
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			_, _, e := unix.Recvfrom(int(fd), s.buf, unix.MSG_DONTWAIT)
			switch e {
			case nil, unix.EINTR, unix.ENOBUFS: // ENOBUFS reports an overrun and clears it
			case unix.EAGAIN:
				return true
			default:
				rerr = e
				return true
			}
		}
	})
	if err = errors.Join(err, rerr); err != nil {
		return fmt.Errorf("resyncing the netfilter socket: %w", err)
	}
	return nil
}

// batchErr describes the errors the kernel reported for a batch, naming the
// object of each failed message.
func batchErr(errs []batchError, msgs []netlink.Message) error {
	if len(errs) == 0 {
		return nil
	}
	var out []error
	for i, e := range errs {
		if i == 5 {
			out = append(out, fmt.Errorf("and %d more errors", len(errs)-5))
			break
		}
		what := "committing the batch"
		if e.Index >= 0 && e.Index < len(msgs) {
			what = describeMsg(msgs[e.Index])
		}
		out = append(out, fmt.Errorf("%s: %w", what, e.Errno))
	}
	return fmt.Errorf("the kernel refused the batch, nothing was changed: %w", errors.Join(out...))
}

// msgNames gives, per nftables message type, what it does and the attribute
// holding the name of its object.
var msgNames = map[uint16]struct {
	verb string
	attr uint16
}{
	unix.NFT_MSG_NEWTABLE:   {"adding table", unix.NFTA_TABLE_NAME},
	unix.NFT_MSG_DELTABLE:   {"deleting table", unix.NFTA_TABLE_NAME},
	unix.NFT_MSG_NEWCHAIN:   {"adding chain", unix.NFTA_CHAIN_NAME},
	unix.NFT_MSG_DELCHAIN:   {"deleting chain", unix.NFTA_CHAIN_NAME},
	unix.NFT_MSG_NEWRULE:    {"adding a rule to chain", unix.NFTA_RULE_CHAIN},
	unix.NFT_MSG_DELRULE:    {"deleting the rules of table", unix.NFTA_RULE_TABLE},
	unix.NFT_MSG_NEWSET:     {"adding set", unix.NFTA_SET_NAME},
	unix.NFT_MSG_DELSET:     {"deleting set", unix.NFTA_SET_NAME},
	unix.NFT_MSG_NEWSETELEM: {"adding elements to set", unix.NFTA_SET_ELEM_LIST_SET},
	unix.NFT_MSG_NEWOBJ:     {"adding counter", unix.NFTA_OBJ_NAME},
	unix.NFT_MSG_DELOBJ:     {"deleting object", unix.NFTA_OBJ_NAME},
}

func describeMsg(m netlink.Message) string {
	typ := uint16(m.Header.Type) & 0xff
	n, ok := msgNames[typ]
	if !ok {
		return fmt.Sprintf("nftables message %d", typ)
	}
	if len(m.Data) < 4 {
		return n.verb
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return n.verb
	}
	for ad.Next() {
		if ad.Type() == n.attr {
			return n.verb + " " + ad.String()
		}
	}
	return n.verb
}

// genID returns the nftables ruleset generation of the namespace: every
// commit, by anyone, to any table changes it.
func (s *nlSocket) genID() (uint32, error) {
	s.seq++
	seq := s.seq
	req := appendMsg(nil, unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, unix.NLM_F_REQUEST, seq, batchHeader())
	if err := s.write(req); err != nil {
		return 0, fmt.Errorf("asking for the nftables generation: %w", err)
	}
	gen, err := s.readGen(seq)
	if err != nil {
		return 0, s.afterFailure(fmt.Errorf("reading the nftables generation: %w", err))
	}
	return gen, nil
}

func (s *nlSocket) readGen(seq uint32) (uint32, error) {
	deadline := time.Now().Add(batchTimeout)
	for {
		msgs, err := s.read(deadline)
		if err != nil {
			return 0, err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch {
			case m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4:
				if errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data[:4]))); errno != 0 {
					return 0, errno
				}
			case m.Header.Type == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN && len(m.Data) >= 4:
				ad, err := netlink.NewAttributeDecoder(m.Data[4:])
				if err != nil {
					return 0, err
				}
				ad.ByteOrder = binary.BigEndian
				for ad.Next() {
					if ad.Type() == unix.NFTA_GEN_ID {
						return ad.Uint32(), nil
					}
				}
				return 0, errors.New("the answer carries no generation")
			}
		}
	}
}

// portID is the socket's netlink port: the kernel stamps it on the
// notifications of every change this socket makes.
func (s *nlSocket) portID() (uint32, error) {
	var pid uint32
	var serr error
	err := s.raw.Control(func(fd uintptr) {
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			serr = err
			return
		}
		nl, ok := sa.(*unix.SockaddrNetlink)
		if !ok {
			serr = fmt.Errorf("the netfilter socket has address %T", sa)
			return
		}
		pid = nl.Pid
	})
	if err = errors.Join(err, serr); err != nil {
		return 0, fmt.Errorf("reading the netfilter socket's port: %w", err)
	}
	return pid, nil
}
