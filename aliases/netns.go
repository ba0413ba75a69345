package aliases

import (
	"bytes"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newHandle opens a netlink handle whose sockets live in ns.
func newHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inNS(ns, func() error {
		var err error
		h, err = netlink.NewHandle()
		return err
	})
	return h, err
}

// inNS runs fn on a fresh OS thread switched into ns. Sockets fn opens
// stay in ns after fn returns, and /proc/sys/net answers for ns. The thread
// is never unlocked, so the runtime throws it away afterwards instead of
// running other goroutines in the wrong namespace.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("entering the NIC's network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// setPromoteSecondaries makes deleting the primary address of a subnet
// promote a secondary one instead of deleting every address in that subnet
// with it: without it, removing the router alias would take the DHCP and
// DNS aliases along. It writes only when the value differs.
func setPromoteSecondaries(ns netns.NsHandle, ifname string) error {
	path := "/proc/sys/net/ipv4/conf/" + ifname + "/promote_secondaries"
	return inNS(ns, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if string(bytes.TrimSpace(b)) == "1" {
			return nil
		}
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("setting %s to 1: %w", path, err)
		}
		return nil
	})
}
