package dns

import (
	"testing"

	"gatewayd/roles/dhcp"
)

// The DHCP role publishes its clients' names through this interface.
var _ dhcp.Names = (*Server)(nil)

func TestQualify(t *testing.T) {
	tests := []struct{ in, want, wantTarget string }{
		{"nas", "nas.home.arpa.", "nas.home.arpa."},
		{"NAS.home.arpa", "nas.home.arpa.", "nas.home.arpa."},
		{"printer.lab", "printer.lab.home.arpa.", "printer.lab."},
		{"www.example.com.", "www.example.com.home.arpa.", "www.example.com."},
	}
	for _, tt := range tests {
		if got := Qualify(tt.in, "home.arpa."); got != tt.want {
			t.Errorf("Qualify(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := CNAMETarget(tt.in, "home.arpa."); got != tt.wantTarget {
			t.Errorf("CNAMETarget(%q) = %q, want %q", tt.in, got, tt.wantTarget)
		}
	}
}
