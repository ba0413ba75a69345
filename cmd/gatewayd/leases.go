package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gatewayd/config"
	"gatewayd/daemon"
	"gatewayd/roles/dhcp"
	"gatewayd/statedir"
)

// leases is `gatewayd leases [--json]`, `leases export [FILE]` and
// `leases import FILE`. With the daemon stopped it reads and writes the lease
// store directly, so a role can be moved between boxes either way.
func leases(ctx context.Context, path string, args []string, asJSON bool, out io.Writer) error {
	verb := "list"
	if len(args) > 0 {
		verb, args = args[0], args[1:]
	}
	switch verb {
	case "list":
		list, err := currentLeases(ctx, path)
		if err != nil {
			return err
		}
		if asJSON {
			return dhcp.Export(out, list)
		}
		if len(list) == 0 {
			fmt.Fprintln(out, "no leases")
			return nil
		}
		return dhcp.WriteTable(out, list, time.Now())
	case "export":
		list, err := currentLeases(ctx, path)
		if err != nil {
			return err
		}
		if len(args) == 0 {
			return dhcp.Export(out, list)
		}
		f, err := os.Create(args[0])
		if err != nil {
			return fmt.Errorf("exporting leases: %w", err)
		}
		if err := dhcp.Export(f, list); err != nil {
			f.Close()
			return fmt.Errorf("exporting leases to %s: %w", args[0], err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("exporting leases to %s: %w", args[0], err)
		}
		fmt.Fprintf(out, "exported %d leases to %s\n", len(list), args[0])
		return nil
	case "import":
		if len(args) != 1 {
			return usageError{"usage: gatewayd leases import FILE (gatewayd JSON, a dnsmasq lease file or ISC dhcpd.leases)"}
		}
		return importLeases(ctx, path, args[0], out)
	case "delete":
		if len(args) != 1 {
			return usageError{"usage: gatewayd leases delete ADDR|MAC"}
		}
		key, err := parseLeaseKey(args[0])
		if err != nil {
			return err
		}
		return deleteLeases(ctx, path, key, out)
	}
	return usageError{fmt.Sprintf("unknown leases command %q: use list, export [FILE], import FILE or delete ADDR|MAC", verb)}
}

// currentLeases asks the daemon, or reads the store when it is not running.
func currentLeases(ctx context.Context, path string) ([]dhcp.Lease, error) {
	resp, err := request(ctx, path, daemon.Request{Op: "leases"}, 30*time.Second)
	if errors.Is(err, daemon.ErrNotRunning) {
		srv, cerr := offlineStore(path, true)
		if cerr != nil {
			return nil, cerr
		}
		defer srv.Close()
		return srv.Leases(), nil
	}
	if err != nil {
		return nil, err
	}
	var list []dhcp.Lease
	if err := json.Unmarshal(resp.Data, &list); err != nil {
		return nil, fmt.Errorf("reading leases from the daemon: %w", err)
	}
	return list, nil
}

func importLeases(ctx context.Context, path, file string, out io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("importing leases: %w", err)
	}
	lf, err := dhcp.ReadLeaseFile(f, time.Now())
	f.Close()
	if err != nil {
		return fmt.Errorf("importing leases from %s: %w", file, err)
	}
	list := lf.Leases
	for _, s := range lf.Skipped {
		where := ""
		if s.Line > 0 {
			where = fmt.Sprintf("line %d: ", s.Line)
		}
		fmt.Fprintf(out, "skipped %s%s: %s %s\n", where, s.Address, s.Reason, s.Detail)
	}
	if c, err := config.Load(path); err == nil {
		if dc := daemon.DHCPConfig(c); dc != nil {
			for _, l := range dc.Outside(list) {
				fmt.Fprintf(out, "warning: %s (%s) is outside every pool and static lease of %s: the lease is kept, but the address is never offered again\n", l.Address, l.MAC, path)
			}
		}
	}
	data, _ := json.Marshal(list)
	resp, err := request(ctx, path, daemon.Request{Op: "leases-import", Data: data}, time.Minute)
	var n int
	switch {
	case errors.Is(err, daemon.ErrNotRunning):
		srv, cerr := offlineStore(path, false)
		if cerr != nil {
			return cerr
		}
		defer srv.Close()
		n, err = srv.Import(list)
	case err == nil:
		var r struct{ Imported int }
		_ = json.Unmarshal(resp.Data, &r)
		n = r.Imported
	}
	if err != nil {
		return fmt.Errorf("importing leases from %s: %w", file, err)
	}
	fmt.Fprintf(out, "imported %d of %d leases from %s (%s format, %d skipped)\n", n, len(list), file, lf.Format, len(lf.Skipped))
	return nil
}

// offlineStore opens the DHCP role's lease store without serving, holding the
// state directory's lock so no daemon can start on it meanwhile. Read-only,
// it never writes the lease log, not even to repair it.
func offlineStore(path string, readOnly bool) (*offline, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	unlock, err := statedir.Lock(c.Gateway.StateDir)
	if errors.Is(err, os.ErrPermission) && os.Geteuid() != 0 {
		return nil, fmt.Errorf("the state directory %s is root's only: run this as root", c.Gateway.StateDir)
	}
	if err != nil {
		return nil, err
	}
	srv, err := dhcp.New(dhcp.Options{StateDir: c.Gateway.StateDir, ReadOnly: readOnly})
	if err != nil {
		unlock()
		return nil, err
	}
	return &offline{Server: srv, unlock: unlock}, nil
}

type offline struct {
	*dhcp.Server
	unlock func()
}

func (o *offline) Close() error {
	defer o.unlock()
	return o.Server.Close()
}
