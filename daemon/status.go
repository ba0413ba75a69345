package daemon

import (
	"maps"
	"slices"
	"time"

	"gatewayd/aliases"
)

// Status is what `gatewayd status` shows.
type Status struct {
	Version    string    `json:"version"`
	Started    time.Time `json:"started"`
	Host       string    `json:"host"`
	Interface  string    `json:"interface"`
	Config     string    `json:"config"`
	Generation int       `json:"generation"`
	Applied    time.Time `json:"applied"`
	// Degraded says why the running state is not the config's: a failed
	// reload that could not return to the previous config.
	Degraded string `json:"degraded,omitempty"`
	// Repairs are what the drift loop put back, by kind.
	Repairs map[string]Repairs `json:"repairs,omitempty"`
	// Confirm, when set, is the time a reload applied with --confirm is
	// undone unless `gatewayd confirm` arrives first.
	Confirm *time.Time `json:"confirm_by,omitempty"`
	// Closed are the interfaces no zone names: everything arriving on them
	// is dropped.
	Closed []string `json:"closed_interfaces,omitempty"`
	// NIC is the alias NIC as the kernel has it.
	NIC     *NICStatus     `json:"nic,omitempty"`
	Aliases []AliasStatus  `json:"aliases"`
	Parts   map[string]any `json:"roles"`
}

// NICStatus is the alias NIC: there or not, up or not, and what waits for it.
type NICStatus struct {
	Present bool   `json:"present"`
	Up      bool   `json:"up"`
	Waiting string `json:"waiting,omitempty"`
	Error   string `json:"error,omitempty"`
}

// AliasStatus is one alias of the config as this box sees it.
type AliasStatus struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Label    string `json:"label"`
	Host     string `json:"host,omitempty"`
	Held     bool   `json:"held"`
	Present  bool   `json:"present"`
	Conflict string `json:"conflict,omitempty"`
	// Waiting says why a held alias is not on the NIC yet (the NIC is absent).
	Waiting string `json:"waiting,omitempty"`
}

// Status reports the running generation: the daemon's own state read in
// one go, then each part's.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	c, gen, applied := d.cur.config(), d.gen, d.applied
	st := Status{Version: Version, Started: d.started, Generation: gen, Applied: applied, Parts: map[string]any{}}
	if d.degraded != nil {
		st.Degraded = d.degraded.Error()
	}
	if d.confirm != nil {
		by := d.confirm.by
		st.Confirm = &by
	}
	st.Repairs = d.repairStatus()
	st.Closed = d.cur.desired().closedOrNil()
	d.mu.Unlock()
	for _, kind := range slices.Sorted(maps.Keys(st.Repairs)) {
		if r := st.Repairs[kind]; r.Failing != "" && st.Degraded == "" {
			st.Degraded = kind + ": " + r.Failing
		}
	}
	if c == nil {
		return st
	}
	st.Host, st.Interface, st.Config = c.Gateway.Host, c.Gateway.Interface, c.File
	link := d.sub.Aliases.Link()
	st.NIC = &NICStatus{Present: link.Present, Up: link.Up, Waiting: link.Waiting}
	if link.Err != nil {
		st.NIC.Error = link.Err.Error()
	}
	kernel := map[string]aliases.AliasStatus{}
	for _, s := range d.sub.Aliases.Status() {
		kernel[s.Alias.Name] = s
	}
	for _, a := range c.Aliases {
		k := kernel[a.Name]
		st.Aliases = append(st.Aliases, AliasStatus{
			Name: a.Name, Address: a.Address.String(), Label: a.Label, Host: a.Host,
			Held: c.Holds(a), Present: k.Present, Conflict: k.Conflict, Waiting: k.Waiting,
		})
	}
	st.Parts["firewall"] = firewallStatus(d.sub.Firewall)
	st.Parts["router"] = d.sub.Router.Status()
	st.Parts["dns"] = d.sub.DNS.Status()
	st.Parts["dhcp"] = d.sub.DHCP.Status()
	return st
}

// firewallStatus is the firewall's counters, or the error reading them.
func firewallStatus(fw Firewall) any {
	cs, err := fw.Counters()
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	return cs
}
