package daemon

import (
	"encoding/json"
	"fmt"

	"gatewayd/roles/dhcp"
)

// leaseOps are the control requests of `gatewayd leases`.
func leaseOps(s DHCP) map[string]func(json.RawMessage) (any, error) {
	if s == nil {
		return nil
	}
	return map[string]func(json.RawMessage) (any, error){
		"leases": func(json.RawMessage) (any, error) { return s.Leases(), nil },
		"leases-import": func(data json.RawMessage) (any, error) {
			var leases []dhcp.Lease
			if err := json.Unmarshal(data, &leases); err != nil {
				return nil, fmt.Errorf("reading the leases to import: %w", err)
			}
			n, err := s.Import(leases)
			return map[string]int{"imported": n}, err
		},
	}
}
