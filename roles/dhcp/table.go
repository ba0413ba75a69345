package dhcp

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteTable writes leases as the text table of `gatewayd leases`: address,
// client (MAC, and client id when there is one), host name, state, and
// when the lease ends, relative to now.
func WriteTable(w io.Writer, leases []Lease, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tMAC\tCLIENT ID\tHOSTNAME\tSTATE\tENDS")
	for _, l := range leases {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Address, dash(l.MAC), dash(l.ClientID), dash(l.Hostname), l.State, ends(l.Expires, now))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the lease table: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ends says when a lease ends: "in 11h59m", "5m ago", or "never".
func ends(t, now time.Time) string {
	if !t.Before(neverExpires) {
		return "never"
	}
	d := t.Sub(now).Round(time.Second)
	if d < 0 {
		return (-d).String() + " ago"
	}
	return "in " + d.String()
}
