package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"gatewayd/daemon"
	"gatewayd/roles/dhcp"
)

// leaseKey names what `leases delete` removes: the lease of one address, or
// every lease of one MAC (a client may hold one per subnet). It is the
// payload of the control request "leases-delete".
type leaseKey struct {
	Address netip.Addr `json:"address,omitzero"`
	MAC     string     `json:"mac,omitempty"`
}

func (k leaseKey) String() string {
	if k.Address.IsValid() {
		return k.Address.String()
	}
	return k.MAC
}

func parseLeaseKey(s string) (leaseKey, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return leaseKey{Address: a}, nil
	}
	if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
		return leaseKey{MAC: hw.String()}, nil
	}
	return leaseKey{}, usageError{fmt.Sprintf("%q is neither an IPv4 address nor a MAC address like 00:0d:61:0b:d9:a0", s)}
}

// errDeleteUnsupported is the answer of a daemon older than the command,
// which has no "leases-delete" request.
var errDeleteUnsupported = errors.New("leases delete is not supported by the running daemon (an older gatewayd): restart it, or stop it and run leases delete again")

// deleteLeases asks the daemon, or edits the store when it is not running.
func deleteLeases(ctx context.Context, path string, key leaseKey, out io.Writer) error {
	data, _ := json.Marshal(key)
	resp, err := request(ctx, path, daemon.Request{Op: "leases-delete", Data: data}, 30*time.Second)
	var deleted []dhcp.Lease
	switch {
	case errors.Is(err, daemon.ErrNotRunning):
		if deleted, err = deleteOffline(path, key); err != nil {
			return err
		}
	case resp != nil && resp.Error == fmt.Sprintf("unknown request %q", "leases-delete"):
		return errDeleteUnsupported
	case err != nil:
		return fmt.Errorf("deleting the lease of %s: %w", key, err)
	default:
		var r struct {
			Deleted []dhcp.Lease `json:"deleted"`
		}
		if err := json.Unmarshal(resp.Data, &r); err != nil {
			return fmt.Errorf("reading the answer to leases delete: %w", err)
		}
		deleted = r.Deleted
	}
	if len(deleted) == 0 {
		return fmt.Errorf("no lease for %s", key)
	}
	for _, l := range deleted {
		fmt.Fprintf(out, "deleted the lease of %s (%s)\n", l.Address, strings.Join(nonEmpty(l.MAC, l.ClientID, l.Hostname), ", "))
	}
	return nil
}

func deleteOffline(path string, key leaseKey) ([]dhcp.Lease, error) {
	srv, err := offlineStore(path, false)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	var hw net.HardwareAddr
	if key.MAC != "" {
		hw, _ = net.ParseMAC(key.MAC)
	}
	deleted, err := srv.Delete(key.Address, hw)
	if err != nil {
		return nil, fmt.Errorf("deleting the lease of %s: %w", key, err)
	}
	return deleted, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
