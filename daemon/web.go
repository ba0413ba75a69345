package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gatewayd/config"
	"gatewayd/firewall"
	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
	"gatewayd/web"
)

// webState is the daemon's side of the web listener ([gateway] metrics):
// its address, the running server, and the reload history it shows.
type webState struct {
	addr    string   // "" = off
	names   []string // the box's names it answers to (web.Options.Names)
	reloads reloadLog

	mu    sync.Mutex
	stop  func() // nil while not serving
	bound string // the address the listener got, for the log and the tests
}

// startWeb listens on the metrics address, when one is set, and serves the
// status page and /metrics there until stopWeb. The socket may bind an
// alias address before the alias is on the NIC (IP_FREEBIND), so the first
// start does not depend on the order addresses come up in.
func (d *Daemon) startWeb() error {
	if d.web.addr == "" {
		return nil
	}
	lc := net.ListenConfig{Control: freebind}
	ln, err := lc.Listen(context.Background(), "tcp", d.web.addr)
	if err != nil {
		return fmt.Errorf("listening for the web status and metrics ([gateway] metrics = %q): %w", d.web.addr, err)
	}
	srv := web.New(webSource{d}, web.Options{Logger: d.log, Names: d.web.names})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			d.log.Error("web status and metrics stopped", "addr", d.web.addr, "err", err)
		}
	}()
	d.web.mu.Lock()
	d.web.stop = func() { cancel(); <-done }
	d.web.bound = ln.Addr().String()
	d.web.mu.Unlock()
	d.log.Info("web status and metrics", "addr", d.web.bound)
	return nil
}

// webNames are the names a browser may use for this box, besides its
// addresses and localhost: [gateway] host, and its FQDN in the site's
// [dns] domain (or its first label, when host is written as an FQDN).
func webNames(c *config.Config) []string {
	host := strings.TrimSuffix(c.Gateway.Host, ".")
	names := []string{host}
	if short, _, fq := strings.Cut(host, "."); fq {
		names = append(names, short)
	} else if c.DNS != nil && c.DNS.Domain != "" {
		names = append(names, host+"."+strings.TrimSuffix(c.DNS.Domain, "."))
	}
	return names
}

// stopWeb closes the web listener and waits for its requests; it does
// nothing when the listener is off or already stopped.
func (d *Daemon) stopWeb() {
	d.web.mu.Lock()
	stop := d.web.stop
	d.web.stop = nil
	d.web.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// freebind lets a listener bind an address not (yet) on any interface.
func freebind(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// keepReloads is how many reload results the page lists.
const keepReloads = 10

// reloadLog counts reloads (the control socket's and SIGHUP's) and keeps
// the last few results.
type reloadLog struct {
	mu     sync.Mutex
	total  uint64
	failed uint64
	lastOK time.Time
	recent []web.Reload // newest first
}

// note records one reload's result.
func (r *reloadLog) note(changes []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rl := web.Reload{At: time.Now(), OK: err == nil, Changes: len(changes)}
	r.total++
	if err != nil {
		r.failed++
		rl.Error = err.Error()
	} else {
		r.lastOK = rl.At
	}
	r.recent = append([]web.Reload{rl}, r.recent[:min(len(r.recent), keepReloads-1)]...)
}

func (r *reloadLog) read() web.Reloads {
	r.mu.Lock()
	defer r.mu.Unlock()
	return web.Reloads{Total: r.total, Failed: r.failed, LastSuccess: r.lastOK, Recent: append([]web.Reload(nil), r.recent...)}
}

// restoreObject is the metric label of each kind of drift repair.
var restoreObject = map[string]string{
	driftAddresses: "addresses", driftFirewall: "ruleset", driftRouter: "routes", driftDHCP: "dhcp",
}

// webSource is the daemon as the web package reads it.
type webSource struct{ d *Daemon }

// StatusJSON is the control socket's "status" answer.
func (s webSource) StatusJSON() ([]byte, error) { return json.Marshal(s.d.Status()) }

func (s webSource) Leases() []dhcp.Lease {
	if s.d.sub.DHCP == nil {
		return nil
	}
	return s.d.sub.DHCP.Leases()
}

// Status is the daemon's Status with each part in its own type, the running
// config's zone policy and the reload history.
func (s webSource) Status() web.Status {
	st := s.d.Status()
	out := web.Status{
		Host: st.Host, Interface: st.Interface, Config: st.Config,
		Generation: st.Generation, Applied: st.Applied, Degraded: st.Degraded,
		Reloads: s.d.web.reloads.read(), Restores: web.Restores{},
	}
	for kind, r := range st.Repairs {
		if object, ok := restoreObject[kind]; ok { // a new kind gets its label here first
			out.Restores[object] = uint64(r.Restores)
		}
	}
	for _, a := range st.Aliases {
		out.Aliases = append(out.Aliases, web.Alias{Name: a.Name, Address: a.Address, Label: a.Label,
			Host: a.Host, Held: a.Held, Present: a.Present, Conflict: a.Conflict})
	}
	switch fw := st.Parts["firewall"].(type) {
	case firewall.Counters:
		out.Firewall = fw
	case map[string]string:
		out.FirewallErr = fw["error"]
	}
	if r, ok := st.Parts["router"].(router.Status); ok {
		out.Router = &r
	}
	if d, ok := st.Parts["dns"].(dns.Status); ok {
		out.DNS = &d
		out.Histograms.DNSQuery = map[string]*web.Histogram{}
		for stage, h := range d.Latency {
			out.Histograms.DNSQuery[stage] = webHistogram(h.Bounds, h.Counts, h.Count, h.Sum)
		}
	}
	if d, ok := st.Parts["dhcp"].(dhcp.Status); ok {
		out.DHCP = &d
		f, b := d.Store.Fsync, d.Store.BatchRecords
		out.Histograms.LeaseFsync = webHistogram(f.Bounds, f.Counts, f.Count, f.Sum)
		out.Histograms.LeaseBatch = webHistogram(b.Bounds, b.Counts, b.Count, b.Sum)
	}
	s.d.mu.Lock()
	c := s.d.cur.config()
	s.d.mu.Unlock()
	out.Zones = webZones(c)
	return out
}

// webHistogram is a role's distribution (a count per bucket, the last one
// above every bound) as Prometheus keeps one: cumulative counts by upper
// bound, the +Inf bucket being count. A distribution without its buckets
// is nil: left out of the metrics.
func webHistogram(bounds []float64, counts []uint64, count uint64, sum float64) *web.Histogram {
	if len(counts) != len(bounds)+1 {
		return nil
	}
	h := &web.Histogram{Count: count, Sum: sum, Buckets: make(map[float64]uint64, len(bounds))}
	var c uint64
	for i, b := range bounds {
		c += counts[i]
		h.Buckets[b] = c
	}
	return h
}

// webZones is each zone's policy, its services with their ports.
func webZones(c *config.Config) []web.Zone {
	if c == nil {
		return nil
	}
	var out []web.Zone
	for _, z := range c.Zones {
		wz := web.Zone{Name: z.Name, Forward: z.Forward, Implicit: z.Implicit}
		for _, p := range z.Subnets {
			wz.Subnets = append(wz.Subnets, p.String())
		}
		for _, name := range z.Allow {
			wz.Allow = append(wz.Allow, web.Service{Name: name, Ports: portsText(c.Services[name])})
		}
		out = append(out, wz)
	}
	return out
}

// portsText is a service's ports as "tcp/22 udp/60000-61000".
func portsText(s *config.Service) string {
	if s == nil {
		return ""
	}
	var parts []string
	for _, p := range s.Ports {
		switch {
		case p.Proto == "icmp":
			parts = append(parts, "icmp")
		case p.From == p.To:
			parts = append(parts, fmt.Sprintf("%s/%d", p.Proto, p.From))
		default:
			parts = append(parts, fmt.Sprintf("%s/%d-%d", p.Proto, p.From, p.To))
		}
	}
	return strings.Join(parts, " ")
}
