package dhcp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// The lease log is a text file of one record per line, each the whole state of
// one address; the last record of an address wins:
//
//	<crc32c hex> <addr> <state a|d|r|x> <expires unix> <mac hex|-> <client id hex|-> <hostname|-> [s]
//
// The CRC covers the line after "<crc> " up to the newline, so a torn or
// damaged line is recognised. State x is a deletion (`leases delete`): the
// address has no binding. The writer writes lines ending in "\n" only, but
// the reader also takes "\r\n" and "\r" endings, blank lines, spaces around
// a record and a last line without its newline (a file edited by hand or
// copied through another system): those are framing, not damage.

const logName = "leases.log"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// maxRecord bounds one record's line: the longest fields (a 16-byte chaddr,
// a 255-byte client id, a 63-byte host name) fit with room to spare. A cut
// longer than this is more than one interrupted write.
const maxRecord = 1024

// maxLine is the longest line the reader keeps; a longer one is damage.
const maxLine = 4096

// logReport is what reading the log found.
type logReport struct {
	size    int64 // bytes read
	records int64 // good records
	good    int64 // offset after the last good record's line
	// terminated is false when the file's last byte ends no line.
	terminated bool

	// Damage: lines that are not records (blank lines aside).
	midLines, midBytes   int64 // before the last good record: skipped
	tailLines, tailBytes int64 // after it: cut
	zeroLines, zeroBytes int64 // damage that is only NUL bytes (space a crash left unwritten)
	tailZero             bool  // the whole tail is NUL bytes
	lookalike            int64 // damaged lines that look like records (a CRC field, an address field)

	// Framing read as such.
	crlf, bareCR, blank, padded int64
}

// damaged reports whether some of the file is not records.
func (r *logReport) damaged() bool { return r.midLines > 0 || r.tailLines > 0 }

// lostBytes is the damage that is not NUL padding.
func (r *logReport) lostBytes() int64 { return r.midBytes + r.tailBytes - r.zeroBytes }

// serious reports whether the damage is more than one interrupted write
// leaves (a partial last record, or unwritten space): it is then logged as
// an ERROR.
func (r *logReport) serious() bool {
	return r.midLines+r.tailLines-r.zeroLines > 1 || r.lostBytes() > maxRecord
}

// appearsToHold is how many records the file looks like it holds: the good
// ones and the damaged lines that look like records.
func (r *logReport) appearsToHold() int64 { return r.records + r.lookalike }

// heavyLoss reports whether keeping only the good records would drop more
// than one record and leave fewer than half of what the file appears to
// hold: a start then refuses (see Options.AcceptLeaseLoss), as ISC dhcpd
// refuses a lease file it cannot read.
func (r *logReport) heavyLoss() bool {
	return r.lookalike > 1 && 2*r.records < r.appearsToHold()
}

// damage describes what is not records, for logs and status.
func (r *logReport) damage() string {
	var parts []string
	if r.midLines > 0 {
		parts = append(parts, fmt.Sprintf("skipped %d damaged records (%d bytes) among the good ones", r.midLines, r.midBytes))
	}
	if r.tailLines > 0 {
		what := "a torn tail"
		if r.tailZero {
			what = "a tail of NUL bytes (space a crash left unwritten)"
		}
		parts = append(parts, fmt.Sprintf("%s of %d bytes in %d lines after the last record", what, r.tailBytes, r.tailLines))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("%s; %d records readable", strings.Join(parts, " and "), r.records)
}

// framing describes the framing read that the writer does not write.
func (r *logReport) framing() string {
	var parts []string
	for _, f := range []struct {
		n    int64
		what string
	}{{r.crlf, "CRLF line endings"}, {r.bareCR, "CR line endings"}, {r.blank, "blank lines"}, {r.padded, "spaces around records"}} {
		if f.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", f.n, f.what))
		}
	}
	if !r.terminated && r.size > 0 && r.tailLines == 0 {
		parts = append(parts, "no newline at the end")
	}
	return strings.Join(parts, ", ")
}

// readLog reads every record of the log; the last one of each address wins
// and a deletion removes the address. Damaged lines are counted, not
// returned: lines before the last good record are skipped, those after it
// are the tail to cut. size, the file's, sizes the map of bindings.
func readLog(rd io.Reader, size int64) (map[uint32]*binding, *logReport, error) {
	rep := &logReport{terminated: true}
	binds := make(map[uint32]*binding, min(size/recordGuess, 1<<24))
	var pend struct{ lines, bytes, zeroLines, zero, like int64 }
	err := eachLine(rd, func(l rawLine) {
		rep.size = l.end
		rep.terminated = l.term != 0
		switch l.term {
		case crlf:
			rep.crlf++
		case '\r':
			rep.bareCR++
		}
		rec := bytes.TrimSpace(l.text)
		if len(rec) == 0 && !l.long && !l.zero {
			rep.blank++
			return
		}
		if len(rec) != len(l.text) {
			rep.padded++
		}
		b, ok := decodeRecord(rec)
		if l.long || !ok {
			pend.lines++
			pend.bytes += int64(l.n)
			if l.zero {
				pend.zeroLines++
				pend.zero += int64(l.n)
			}
			if looksLikeRecord(rec) {
				pend.like++
			}
			return
		}
		rep.midLines += pend.lines
		rep.midBytes += pend.bytes
		rep.zeroLines += pend.zeroLines
		rep.zeroBytes += pend.zero
		rep.lookalike += pend.like
		pend.lines, pend.bytes, pend.zeroLines, pend.zero, pend.like = 0, 0, 0, 0, 0
		if b.state == bindDeleted {
			delete(binds, b.addr)
		} else {
			binds[b.addr] = b
		}
		rep.records++
		rep.good = l.end
	})
	if err != nil {
		return nil, rep, err
	}
	rep.tailLines, rep.tailBytes = pend.lines, pend.bytes
	rep.tailZero = pend.lines > 0 && pend.lines == pend.zeroLines
	rep.zeroLines += pend.zeroLines
	rep.zeroBytes += pend.zero
	rep.lookalike += pend.like
	return binds, rep, nil
}

// rawLine is one line as eachLine found it.
type rawLine struct {
	text []byte // without its ending (only its start when long); valid during the callback
	n    int    // bytes, ending included
	end  int64  // offset after the line
	// term is the ending: '\n', '\r', crlf, or 0 for none (the last line
	// of the file).
	term int
	long bool // longer than maxLine
	zero bool // every byte before the ending is NUL
}

const crlf = '\r' | '\n'<<8

// eachLine calls fn for every line of rd, ended by "\n", "\r\n" or "\r".
func eachLine(rd io.Reader, fn func(rawLine)) error {
	br := bufio.NewReaderSize(rd, 1<<16)
	var cur []byte
	var off int64
	n, long, zero := 0, false, true
	add := func(piece []byte) {
		n += len(piece)
		off += int64(len(piece))
		zero = zero && allZero(piece)
		if long || len(cur)+len(piece) > maxLine {
			long = true
			return
		}
		cur = append(cur, piece...)
	}
	flush := func(term, used int) {
		n += used
		off += int64(used)
		fn(rawLine{text: cur, n: n, end: off, term: term, long: long, zero: zero && n > used})
		cur, n, long, zero = cur[:0], 0, false, true
	}
	for {
		seg, err := br.ReadSlice('\n')
		for len(seg) > 0 {
			i := bytes.IndexAny(seg, "\r\n")
			if i < 0 {
				add(seg)
				break
			}
			add(seg[:i])
			term, used := int(seg[i]), 1
			if seg[i] == '\r' && i+1 < len(seg) && seg[i+1] == '\n' {
				term, used = crlf, 2
			}
			flush(term, used)
			seg = seg[i+used:]
		}
		switch {
		case err == io.EOF:
			if n > 0 {
				flush(0, 0)
			}
			return nil
		case err != nil && !errors.Is(err, bufio.ErrBufferFull):
			return err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// looksLikeRecord reports whether a damaged line still looks like a record:
// a CRC of 8 hex digits first, or an address second.
func looksLikeRecord(line []byte) bool {
	f := bytes.Fields(line)
	if len(f) >= 2 && len(f[0]) == 8 {
		if _, err := hex.DecodeString(string(f[0])); err == nil {
			return true
		}
	}
	if len(f) >= 2 {
		if _, err := parseAddr4(string(f[1])); err == nil {
			return true
		}
	}
	return false
}

// encodeRecord appends one log line for b.
func encodeRecord(dst []byte, b *binding) []byte {
	start := len(dst)
	dst = append(dst, "00000000 "...)
	body := len(dst)
	a := u32Addr(b.addr).As4()
	for i, x := range a {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendUint(dst, uint64(x), 10)
	}
	dst = append(dst, ' ', byte(b.state), ' ')
	dst = strconv.AppendInt(dst, b.expires, 10)
	for _, field := range []string{b.mac, b.clientID} {
		dst = append(dst, ' ')
		if field == "" {
			dst = append(dst, '-')
			continue
		}
		dst = appendHex(dst, field)
	}
	dst = append(dst, ' ')
	if b.hostname == "" {
		dst = append(dst, '-')
	} else {
		dst = append(dst, b.hostname...)
	}
	if b.static {
		dst = append(dst, " s"...)
	}
	sum := crc32.Checksum(dst[body:], crcTable)
	const digits = "0123456789abcdef"
	for i := 0; i < 8; i++ {
		dst[start+i] = digits[(sum>>(28-4*uint(i)))&0xf]
	}
	return append(dst, '\n')
}

func appendHex(dst []byte, s string) []byte {
	const digits = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		dst = append(dst, digits[s[i]>>4], digits[s[i]&0xf])
	}
	return dst
}

// recordGuess is about the size of a record, to guess how many a log of
// some size holds.
const recordGuess = 64

// decodeRecord parses one line (a trailing newline is ignored); ok is false
// for a damaged one.
func decodeRecord(line []byte) (*binding, bool) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if len(line) < 10 || line[8] != ' ' {
		return nil, false
	}
	want, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil || crc32.Checksum(line[9:], crcTable) != uint32(want) {
		return nil, false
	}
	var fields [8][]byte // a log of hundreds of thousands of records is read at start
	f := splitFields(fields[:0], line[9:])
	if len(f) != 6 && len(f) != 7 {
		return nil, false
	}
	addr, err := parseAddr4(string(f[0]))
	st := bindState(0)
	if len(f[1]) == 1 {
		st = bindState(f[1][0])
	}
	exp, err2 := strconv.ParseInt(string(f[2]), 10, 64)
	mac, ok1 := unhexField(f[3])
	cid, ok2 := unhexField(f[4])
	if err != nil || err2 != nil || !ok1 || !ok2 || (st != bindActive && st != bindDeclined && st != bindExpired && st != bindDeleted) {
		return nil, false
	}
	b := &binding{addr: addr, state: st, expires: exp, mac: mac, clientID: cid}
	if string(f[5]) != "-" {
		b.hostname = string(f[5])
	}
	b.static = len(f) == 7 && string(f[6]) == "s"
	return b, true
}

func unhexField(f []byte) (string, bool) {
	if string(f) == "-" {
		return "", true
	}
	var buf [64]byte
	out := buf[:0]
	if len(f)/2 > len(buf) {
		out = make([]byte, 0, len(f)/2)
	}
	out = out[:len(f)/2]
	if _, err := hex.Decode(out, f); err != nil {
		return "", false
	}
	return string(out), true
}

// splitFields appends the fields of b separated by white space to dst, as
// bytes.Fields finds them, up to cap(dst)+1: a line with more is not a
// record, whatever the rest. A record is ASCII; a line that is not goes
// through bytes.Fields, whose white space is Unicode's.
func splitFields(dst [][]byte, b []byte) [][]byte {
	for _, c := range b {
		if c >= 0x80 {
			return append(dst, bytes.Fields(b)...)
		}
	}
	limit := cap(dst)
	for i := 0; i < len(b); {
		for i < len(b) && asciiSpace(b[i]) {
			i++
		}
		j := i
		for j < len(b) && !asciiSpace(b[j]) {
			j++
		}
		if j > i {
			if len(dst) == limit {
				return append(dst, b[i:j]) // one too many: the caller refuses
			}
			dst = append(dst, b[i:j])
		}
		i = j
	}
	return dst
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
