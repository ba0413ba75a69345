package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// iscToken is one token of dhcpd.leases: a word, a quoted string, or one of
// "{", "}", ";". quoted strings keep their unescaped bytes.
type iscToken struct {
	text   string
	quoted bool
	line   int
}

// iscLex splits dhcpd.leases into tokens, dropping # comments.
func iscLex(data []byte) ([]iscToken, error) {
	var out []iscToken
	line := 1
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';':
			out = append(out, iscToken{text: string(c), line: line})
			i++
		case c == '"':
			s, n, err := iscString(data[i:])
			if err != nil {
				return nil, fmt.Errorf("dhcpd.leases line %d: %w", line, err)
			}
			out = append(out, iscToken{text: s, quoted: true, line: line})
			i += n
		default:
			j := i
			for j < len(data) && !strings.ContainsRune(" \t\r\n{};\"#", rune(data[j])) {
				j++
			}
			out = append(out, iscToken{text: string(data[i:j]), line: line})
			i = j
		}
	}
	return out, nil
}

// iscString reads a quoted string with C escapes (\" \\ \n \t \NNN octal,
// \xHH); it returns the bytes and how much input it used.
func iscString(data []byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '"':
			return b.String(), i + 1, nil
		case c != '\\':
			b.WriteByte(c)
		case i+1 >= len(data):
			return "", 0, fmt.Errorf("unterminated string")
		default:
			i++
			switch e := data[i]; {
			case e >= '0' && e <= '7':
				j := i
				for j < len(data) && j < i+3 && data[j] >= '0' && data[j] <= '7' {
					j++
				}
				v, _ := strconv.ParseUint(string(data[i:j]), 8, 8)
				b.WriteByte(byte(v))
				i = j - 1
			case e == 'x' && i+2 < len(data):
				v, err := strconv.ParseUint(string(data[i+1:i+3]), 16, 8)
				if err != nil {
					return "", 0, fmt.Errorf("bad escape \\x%s", data[i+1:i+3])
				}
				b.WriteByte(byte(v))
				i += 2
			case e == 'n':
				b.WriteByte('\n')
			case e == 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// readISC reads ISC dhcpd's lease file: "lease <addr> { ... }" blocks, in
// order (resolve keeps the last of an address). A lease not in binding
// state active is marked to skip.
func readISC(data []byte) ([]entry, error) {
	toks, err := iscLex(data)
	if err != nil {
		return nil, err
	}
	var out []entry
	for i := 0; i < len(toks); {
		if toks[i].text != "lease" || toks[i].quoted || i+2 >= len(toks) || toks[i+2].text != "{" {
			i = iscSkip(toks, i)
			continue
		}
		addr, err := netip.ParseAddr(toks[i+1].text)
		if err != nil {
			return nil, fmt.Errorf("dhcpd.leases line %d: lease address %q: %w", toks[i+1].line, toks[i+1].text, err)
		}
		end := iscBlockEnd(toks, i+2)
		if end < 0 {
			return nil, fmt.Errorf("dhcpd.leases line %d: lease %s has no closing brace", toks[i].line, addr)
		}
		l, state, err := iscLease(addr, toks[i+3:end])
		if err != nil {
			return nil, err
		}
		e := entry{lease: l, line: toks[i].line}
		switch {
		case !addr.Is4():
			e = entry{line: e.line, skip: SkipNotIPv4, extra: addr.String()}
		case state == "":
			e.skip = SkipNoState
		case state != "active":
			e.skip, e.extra = SkipNotActive, "binding state "+state
		}
		out = append(out, e)
		i = end + 1
	}
	return out, nil
}

// iscSkip passes one top-level statement: up to its ";" or its block's "}".
func iscSkip(toks []iscToken, i int) int {
	for ; i < len(toks); i++ {
		switch toks[i].text {
		case ";":
			return i + 1
		case "{":
			if end := iscBlockEnd(toks, i); end >= 0 {
				return end + 1
			}
			return len(toks)
		}
	}
	return i
}

// iscBlockEnd returns the index of the "}" closing the "{" at open, or -1.
func iscBlockEnd(toks []iscToken, open int) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		if toks[i].quoted {
			continue
		}
		switch toks[i].text {
		case "{":
			depth++
		case "}":
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// iscLease reads the statements of one lease block; state is its binding
// state, "" when it has none.
func iscLease(addr netip.Addr, toks []iscToken) (Lease, string, error) {
	l := Lease{Address: addr, State: StateActive}
	state := ""
	for i := 0; i < len(toks); {
		j := i
		for j < len(toks) && toks[j].text != ";" && toks[j].text != "{" {
			j++
		}
		if j < len(toks) && toks[j].text == "{" { // a nested block (on commit { ... })
			end := iscBlockEnd(toks, j)
			if end < 0 {
				return l, "", fmt.Errorf("dhcpd.leases line %d: unclosed block in lease %s", toks[j].line, addr)
			}
			i = end + 1
			continue
		}
		st := toks[i:j]
		i = j + 1
		if len(st) == 0 {
			continue
		}
		if err := iscStatement(&l, &state, st); err != nil {
			return l, "", fmt.Errorf("dhcpd.leases line %d: lease %s: %w", st[0].line, addr, err)
		}
	}
	return l, state, nil
}

func iscStatement(l *Lease, state *string, st []iscToken) error {
	words := make([]string, len(st))
	for i, t := range st {
		words[i] = t.text
	}
	switch {
	case words[0] == "ends":
		t, err := iscTime(words[1:])
		if err != nil {
			return fmt.Errorf("ends: %w", err)
		}
		l.Expires = t
	case len(words) == 3 && words[0] == "binding" && words[1] == "state":
		*state = words[2]
	case len(words) == 3 && words[0] == "hardware":
		hw, err := net.ParseMAC(words[2])
		if err != nil {
			return fmt.Errorf("hardware %q: %w", words[2], err)
		}
		l.MAC = hw.String()
	case len(words) == 2 && words[0] == "uid":
		id := words[1]
		if !st[1].quoted {
			b, err := parseColonHex(id)
			if err != nil {
				return fmt.Errorf("uid %q: %w", id, err)
			}
			id = string(b)
		}
		l.ClientID = colonHex(id)
	case len(words) == 2 && words[0] == "client-hostname":
		l.Hostname = words[1]
	}
	return nil
}

// iscTime reads "4 2024/01/04 22:00:00" (UTC), "epoch 1704405600" or "never".
func iscTime(w []string) (time.Time, error) {
	switch {
	case len(w) == 1 && w[0] == "never":
		return neverExpires, nil
	case len(w) == 2 && w[0] == "epoch":
		v, err := strconv.ParseInt(w[1], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("epoch %q: %w", w[1], err)
		}
		return time.Unix(v, 0).UTC(), nil
	case len(w) == 3:
		t, err := time.Parse("2006/01/02 15:04:05", w[1]+" "+w[2])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %w", strings.Join(w, " "), err)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a dhcpd.leases time", strings.Join(w, " "))
}
