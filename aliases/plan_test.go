package aliases

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func al(name, prefix, label string) Alias {
	return Alias{Name: name, Prefix: pfx(prefix), Label: label}
}

func ka(prefix, label string) kernelAddr { return kernelAddr{Prefix: pfx(prefix), Label: label} }

// ownedSet is a record for the pure tests: prefix -> recorded name.
func ownedSet(m map[string]string) ownedFunc {
	return func(p netip.Prefix) (Alias, bool) {
		name, ok := m[p.String()]
		return Alias{Name: name, Prefix: p}, ok
	}
}

func TestPlan(t *testing.T) {
	router := al("router", "192.168.1.1/24", "eth1:0")
	dhcp := al("dhcp", "192.168.1.2/24", "eth1:1")
	dns := al("dns", "192.168.1.3/24", "eth1:2")
	primary := ka("192.168.1.10/24", "eth1")
	tests := []struct {
		name    string
		desired []Alias
		kernel  []kernelAddr
		owned   map[string]string
		want    []string // Step.String() of each step
	}{
		{
			name:    "fresh NIC: add everything, leave the primary alone",
			desired: []Alias{router, dhcp, dns},
			kernel:  []kernelAddr{primary},
			want: []string{
				"ip addr add 192.168.1.1/24 dev eth1 label eth1:0",
				"ip addr add 192.168.1.2/24 dev eth1 label eth1:1",
				"ip addr add 192.168.1.3/24 dev eth1 label eth1:2",
			},
		},
		{
			name:    "unchanged: nothing to do",
			desired: []Alias{router, dhcp},
			kernel:  []kernelAddr{primary, ka("192.168.1.1/24", "eth1:0"), ka("192.168.1.2/24", "eth1:1")},
			owned:   map[string]string{"192.168.1.1/24": "router", "192.168.1.2/24": "dhcp"},
		},
		{
			name:    "removed from config: delete ours only, after adding",
			desired: []Alias{router, dns},
			kernel: []kernelAddr{primary, ka("192.168.1.1/24", "eth1:0"), ka("192.168.1.2/24", "eth1:1"),
				ka("192.168.1.50/24", "eth1:9")},
			owned: map[string]string{"192.168.1.1/24": "router", "192.168.1.2/24": "dhcp"},
			want: []string{
				"ip addr add 192.168.1.3/24 dev eth1 label eth1:2",
				"ip addr del 192.168.1.2/24 dev eth1",
			},
		},
		{
			name:    "empty desired set: delete every owned address",
			desired: nil,
			kernel:  []kernelAddr{ka("10.0.0.1/24", "eth1:3"), primary, ka("192.168.1.1/24", "eth1:0")},
			owned:   map[string]string{"192.168.1.1/24": "router", "10.0.0.1/24": "lab"},
			want: []string{
				"ip addr del 10.0.0.1/24 dev eth1",
				"ip addr del 192.168.1.1/24 dev eth1",
			},
		},
		{
			name:    "label changed: relabel",
			desired: []Alias{al("router", "192.168.1.1/24", "eth1:7")},
			kernel:  []kernelAddr{ka("192.168.1.1/24", "eth1:0")},
			owned:   map[string]string{"192.168.1.1/24": "router"},
			want:    []string{"ip addr del 192.168.1.1/24 dev eth1 && ip addr add 192.168.1.1/24 dev eth1 label eth1:7"},
		},
		{
			name:    "prefix length changed: add the new one, delete the old one",
			desired: []Alias{al("router", "192.168.1.1/16", "eth1:0")},
			kernel:  []kernelAddr{ka("192.168.1.1/24", "eth1:0")},
			owned:   map[string]string{"192.168.1.1/24": "router"},
			want: []string{
				"ip addr add 192.168.1.1/16 dev eth1 label eth1:0",
				"ip addr del 192.168.1.1/24 dev eth1",
			},
		},
		{
			name:    "added by hand with the same address: conflict, never taken over",
			desired: []Alias{router, dhcp},
			kernel:  []kernelAddr{ka("192.168.1.2/24", "eth1:1")},
			want: []string{
				"ip addr add 192.168.1.1/24 dev eth1 label eth1:0",
				"# dhcp (192.168.1.2/24): 192.168.1.2/24 (label eth1:1) is already on eth1 but was not added by gatewayd; it matches alias dhcp exactly: run `gatewayd adopt` or remove it",
			},
		},
		{
			name:    "same IP by hand with another length: conflict",
			desired: []Alias{router},
			kernel:  []kernelAddr{ka("192.168.1.1/32", "eth1")},
			want:    []string{"# router (192.168.1.1/24): 192.168.1.1/32 (label eth1) is already on eth1 and was not added by gatewayd; left alone"},
		},
		{
			name:    "ours plus a hand-added twin with another length: ours is fine",
			desired: []Alias{router},
			kernel:  []kernelAddr{ka("192.168.1.1/32", "eth1"), ka("192.168.1.1/24", "eth1:0")},
			owned:   map[string]string{"192.168.1.1/24": "router"},
		},
		{
			name:    "owned but gone from the kernel: add it back",
			desired: []Alias{router},
			kernel:  []kernelAddr{primary},
			owned:   map[string]string{"192.168.1.1/24": "router"},
			want:    []string{"ip addr add 192.168.1.1/24 dev eth1 label eth1:0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := plan("eth1", tt.desired, tt.kernel, ownedSet(tt.owned))
			var got []string
			for _, s := range steps {
				got = append(got, s.String())
				if s.Reason == "" {
					t.Errorf("step %q has no reason", s)
				}
				if s.writes() {
					if _, mine := tt.owned[s.Alias.Prefix.String()]; !mine && s.Op != OpAdd {
						t.Errorf("step %q touches an address gatewayd does not own", s)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPlanDelKeepsRecordedName(t *testing.T) {
	steps := plan("eth1", nil, []kernelAddr{ka("10.0.0.1/24", "eth1:3")}, ownedSet(map[string]string{"10.0.0.1/24": "lab"}))
	if len(steps) != 1 || steps[0].Alias.Name != "lab" || steps[0].Alias.Label != "eth1:3" {
		t.Fatalf("steps = %+v, want one del of lab with label eth1:3", steps)
	}
}

func TestStepString(t *testing.T) {
	a := al("dns", "192.168.1.3/24", "eth1:2")
	tests := []struct {
		step Step
		want string
	}{
		{Step{Op: OpAdd, Alias: a, Interface: "eth1"}, "ip addr add 192.168.1.3/24 dev eth1 label eth1:2"},
		{Step{Op: OpDel, Alias: a, Interface: "eth1"}, "ip addr del 192.168.1.3/24 dev eth1"},
		{Step{Op: OpRelabel, Alias: a, Interface: "eth1", OldLabel: "eth1:9"},
			"ip addr del 192.168.1.3/24 dev eth1 && ip addr add 192.168.1.3/24 dev eth1 label eth1:2"},
		{Step{Op: OpConflict, Alias: a, Interface: "eth1", Reason: "taken"}, "# dns (192.168.1.3/24): taken"},
		{Step{Op: "bogus", Alias: a}, `# unknown step "bogus" for dns (192.168.1.3/24)`},
	}
	for _, tt := range tests {
		if got := tt.step.String(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.step.Op, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		desired []Alias
		wantErr string // substring; empty: valid
	}{
		{"valid", []Alias{al("router", "192.168.1.1/24", "eth1:0"), al("lab", "10.0.0.1/24", "eth1:1")}, ""},
		// A bare label would make the first alias of a subnet the NIC's own
		// address to removable: added once, never removed again.
		{"empty label", []Alias{al("router", "192.168.1.1/24", "")},
			`alias router (192.168.1.1/24): label "": label must be eth1:<something>, e.g. eth1:0; the bare interface name is the NIC's own address`},
		{"bare interface name", []Alias{al("router", "192.168.1.1/24", "eth1")},
			`alias router (192.168.1.1/24): label "eth1": label must be eth1:<something>`},
		{"no prefix", []Alias{{Name: "router"}}, `alias "router": no valid address`},
		{"IPv6", []Alias{al("v6", "2001:db8::1/64", "eth1:0")}, "alias v6 (2001:db8::1/64): only IPv4"},
		{"unspecified", []Alias{al("zero", "0.0.0.0/0", "eth1:0")}, "cannot be an interface address"},
		{"multicast", []Alias{al("m", "224.0.0.1/24", "eth1:0")}, "cannot be an interface address"},
		{"label too long", []Alias{al("router", "192.168.1.1/24", "eth1:0123456789x")}, "longer than 15 bytes"},
		{"label of another NIC", []Alias{al("router", "192.168.1.1/24", "eth0:0")}, `must start with the interface name "eth1"`},
		{"same address twice", []Alias{al("a", "192.168.1.1/24", "eth1:0"), al("b", "192.168.1.1/16", "eth1:1")},
			"alias b (192.168.1.1/16): address 192.168.1.1 is also alias a (192.168.1.1/24)"},
		{"same label twice is allowed", []Alias{al("a", "192.168.1.1/24", "eth1:0"), al("b", "192.168.1.2/24", "eth1:0")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validate("eth1", tt.desired)
			if tt.wantErr == "" {
				if err != nil || len(got) != len(tt.desired) {
					t.Fatalf("validate = %v, %v; want all %d aliases", got, err, len(tt.desired))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := validate("eth1", []Alias{al("v6", "2001:db8::1/64", "eth1:0"), al("long", "10.0.0.1/8", "eth1:0123456789x")})
	if err == nil || !strings.Contains(err.Error(), "v6") || !strings.Contains(err.Error(), "long") {
		t.Fatalf("error %v should name both aliases", err)
	}
}
