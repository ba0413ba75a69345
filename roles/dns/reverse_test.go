package dns

import (
	"net/netip"
	"strings"
	"testing"
)

func TestReversePrefix(t *testing.T) {
	tests := []struct {
		name string
		want string // "" = not a reverse name
	}{
		{"20.1.168.192.in-addr.arpa.", "192.168.1.20/32"},
		{"1.168.192.in-addr.arpa.", "192.168.1.0/24"},
		{"10.in-addr.arpa.", "10.0.0.0/8"},
		{"in-addr.arpa.", "0.0.0.0/0"},
		{"256.1.168.192.in-addr.arpa.", ""},
		{"01.1.168.192.in-addr.arpa.", ""},
		{"1.2.3.4.5.in-addr.arpa.", ""},
		{"x.in-addr.arpa.", ""},
		{"example.com.", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "::1/128"},
		{"d.f.ip6.arpa.", "fd00::/8"},
		{"8.e.f.ip6.arpa.", "fe80::/12"},
		{"ip6.arpa.", "::/0"},
		{"g.f.ip6.arpa.", ""},
		{"10.f.ip6.arpa.", ""},
	}
	for _, tt := range tests {
		p, ok := reversePrefix(tt.name)
		got := ""
		if ok {
			got = p.String()
		}
		if got != tt.want {
			t.Errorf("reversePrefix(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestReverseName(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"192.168.1.20/32", "20.1.168.192.in-addr.arpa."},
		{"192.168.1.0/24", "1.168.192.in-addr.arpa."},
		{"172.16.0.0/12", "16.172.in-addr.arpa."},
		{"10.0.0.0/8", "10.in-addr.arpa."},
		{"fd00::/8", "d.f.ip6.arpa."},
		{"fe80::/10", "8.e.f.ip6.arpa."},
		{"2001:db8::1/128", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
	}
	for _, tt := range tests {
		if got := reverseName(netip.MustParsePrefix(tt.prefix)); got != tt.want {
			t.Errorf("reverseName(%s) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func TestRoundUp(t *testing.T) {
	tests := []struct{ prefix, addr, want string }{
		{"192.168.0.0/20", "192.168.7.9", "192.168.7.0/24"},
		{"192.168.1.0/24", "192.168.1.9", "192.168.1.0/24"},
		{"172.16.0.0/12", "172.20.1.1", "172.20.0.0/16"},
		{"fe80::/10", "fe80::1", "fe80::/12"},
	}
	for _, tt := range tests {
		got := roundUp(netip.MustParsePrefix(tt.prefix), netip.MustParseAddr(tt.addr))
		if got.String() != tt.want {
			t.Errorf("roundUp(%s, %s) = %s, want %s", tt.prefix, tt.addr, got, tt.want)
		}
	}
}

// FuzzReversePrefix checks that every name read as a prefix writes back as
// the same name (in lower case: the pipeline matches lower-case names).
func FuzzReversePrefix(f *testing.F) {
	for _, s := range []string{"20.1.168.192.in-addr.arpa.", "d.f.ip6.arpa.", "in-addr.arpa.", "1.2.3.4.5.in-addr.arpa."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, ok := reversePrefix(name)
		if !ok {
			return
		}
		if back := reverseName(p); back != strings.ToLower(name) {
			t.Fatalf("reversePrefix(%q) = %s, which writes back as %q", name, p, back)
		}
	})
}
