package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

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
		"leases-delete": func(data json.RawMessage) (any, error) {
			var which struct {
				Address string `json:"address"`
				MAC     string `json:"mac"`
			}
			if err := json.Unmarshal(data, &which); err != nil {
				return nil, fmt.Errorf("reading which lease to delete: %w", err)
			}
			var addr netip.Addr
			var mac net.HardwareAddr
			var err error
			if which.Address != "" {
				if addr, err = netip.ParseAddr(which.Address); err != nil {
					return nil, fmt.Errorf("lease to delete: %w", err)
				}
			}
			if which.MAC != "" {
				if mac, err = net.ParseMAC(which.MAC); err != nil {
					return nil, fmt.Errorf("lease to delete: %w", err)
				}
			}
			if !addr.IsValid() && mac == nil {
				return nil, errors.New("lease to delete: give an address or a MAC")
			}
			deleted, err := s.Delete(addr, mac)
			return map[string][]dhcp.Lease{"deleted": deleted}, err
		},
	}
}
