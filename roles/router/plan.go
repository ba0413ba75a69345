package router

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Plan lists, as commands, what Set(c) would change now: sysctl writes,
// the DHCP client started or released, address and route changes; then, as
// comments, what would wait and the conflicts Set would report.
func (r *Router) Plan(c *Config) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c != nil {
		if err := c.check(); err != nil {
			return []string{"# cannot apply " + err.Error()}
		}
	}
	var out, waits []string
	if c != nil {
		for _, s := range wantedSysctls(c) {
			cur, err := r.sys.read(s.Key)
			switch {
			case errors.Is(err, os.ErrNotExist):
				if p, ok := r.absentPending(s); ok {
					waits = append(waits, pendingLine(p))
				}
			case err != nil || cur != s.Value:
				out = append(out, fmt.Sprintf("sysctl -w %s=%s", s.name(), s.Value))
			}
		}
	}
	out = append(out, r.planClient(c)...)
	k, err := r.readKernel(r.needAddrs(c))
	if err != nil {
		return append(out, "# "+err.Error())
	}
	w := r.wan(c)
	adds, dels, pending := planAddrs(w, time.Now(), k, r.rec)
	k.expect(adds)
	var want []Route
	if c != nil {
		want = wantedRoutes(c, w)
	}
	steps, pendR, conflicts := planRoutes(want, k, r.rec)
	for _, s := range adds {
		out = append(out, s.String())
	}
	for _, s := range steps {
		out = append(out, s.String())
	}
	for _, s := range dels {
		out = append(out, s.String())
	}
	if c == nil {
		for i := len(r.rec.Sysctls) - 1; i >= 0; i-- {
			s := r.rec.Sysctls[i]
			if cur, err := r.sys.read(s.Key); err == nil && cur == s.Set {
				out = append(out, fmt.Sprintf("sysctl -w %s=%s", sysctl{Key: s.Key}.name(), s.Was))
			}
		}
	}
	for _, p := range append(pending, pendR...) {
		waits = append(waits, pendingLine(p))
	}
	out = append(out, waits...)
	for _, e := range conflicts {
		out = append(out, "# cannot apply "+e.Error())
	}
	return out
}

func pendingLine(p Pending) string { return "# pending: " + p.What + " (" + p.Reason + ")" }

// planClient says what Set(c) would do with the DHCP client.
func (r *Router) planClient(c *Config) []string {
	var out []string
	var want string
	if c != nil && c.Uplink != nil && c.Uplink.DHCP {
		want = c.Uplink.Interface
	}
	if r.client != nil && r.client.ifname != want {
		out = append(out, "dhcp release on "+r.client.ifname)
	}
	if want != "" && (r.client == nil || r.client.ifname != want) {
		out = append(out, "dhcp client start on "+want+" (the address and default route come with the lease)")
	}
	return out
}

// expect adds to k the subnet routes the kernel adds with each address, so
// the plan sees the next hops they will make reachable.
func (k *kernelState) expect(adds []addrStep) {
	for _, s := range adds {
		if l, ok := k.links[s.addr.Interface]; ok && l.up {
			k.onLink[s.addr.Interface] = append(k.onLink[s.addr.Interface], s.addr.Address.Masked())
		}
	}
}
