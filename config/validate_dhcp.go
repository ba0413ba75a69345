package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
)

// optionsSetByServer are DHCP option codes gatewayd manages itself.
var optionsSetByServer = map[int]string{
	50: "requested address", 51: "lease time", 53: "message type", 54: "server identifier",
	55: "parameter request list", 58: "renewal time", 59: "rebinding time", 61: "client identifier",
	82: "relay agent information",
}

// optionsWithKeys are DHCP option codes a pool sets through its own key.
var optionsWithKeys = map[int]string{
	1: "subnet (the mask comes from it)", 3: "router", 6: "dns", 15: "domain", 28: "broadcast", 42: "ntp", 121: "[[dhcp.pool.route]]",
}

func validateDHCP(c *Config, p *problems, aliases map[string]*Alias) {
	d := c.DHCP
	for i := range d.Pools {
		validatePool(c, p, fmt.Sprintf("dhcp.pool[%d]", i), &d.Pools[i], aliases)
	}
	for i := range d.Pools {
		for j := range d.Pools[:i] {
			a, b := d.Pools[i].Range, d.Pools[j].Range
			if a.Start.IsValid() && b.Start.IsValid() && a.Overlaps(b) {
				p.at(fmt.Sprintf("dhcp.pool[%d].range", i), "range %s overlaps range %s of dhcp.pool[%d] (line %d); ranges must not share addresses",
					a, b, j, p.line(fmt.Sprintf("dhcp.pool[%d].range", j)))
			}
		}
	}
	macs, ids, addrs := map[string]int{}, map[string]int{}, map[netip.Addr]int{}
	for i, s := range d.Static {
		path := fmt.Sprintf("dhcp.static[%d]", i)
		if len(s.MAC) == 0 && s.ClientID == "" {
			p.at(path, "a static lease needs mac = \"00:11:22:33:44:55\" or client_id")
		}
		if len(s.MAC) > 0 {
			if j, dup := macs[s.MAC.String()]; dup {
				p.at(path+".mac", "MAC %s already has a static lease (line %d); one static lease per MAC", s.MAC, p.line(fmt.Sprintf("dhcp.static[%d].mac", j)))
			}
			macs[s.MAC.String()] = i
		}
		if s.ClientID != "" {
			if j, dup := ids[s.ClientID]; dup {
				p.at(path+".client_id", "client_id %q already has a static lease (line %d)", s.ClientID, p.line(fmt.Sprintf("dhcp.static[%d].client_id", j)))
			}
			ids[s.ClientID] = i
		}
		switch {
		case !s.Address.IsValid():
			p.at(path, "address is missing: set address = \"192.168.1.10\"")
		case d.poolFor(s.Address) == nil:
			p.at(path+".address", "%s is outside every pool's subnet; a static lease must be on a subnet a [[dhcp.pool]] serves", s.Address)
		case addrs[s.Address] > 0:
			p.at(path+".address", "%s is already the static lease of another client (line %d)", s.Address, p.line(fmt.Sprintf("dhcp.static[%d].address", addrs[s.Address]-1)))
		case s.Address == d.poolFor(s.Address).Subnet.Addr() || s.Address == broadcast(d.poolFor(s.Address).Subnet):
			p.at(path+".address", "%s is the network or broadcast address of %s; pick a host address", s.Address, d.poolFor(s.Address).Subnet)
		default:
			for _, a := range c.Aliases {
				if a.Address.Addr() == s.Address {
					p.at(path+".address", "%s is the address of alias %q; pick an address no alias uses", s.Address, a.Name)
				}
			}
		}
		addrs[s.Address] = i + 1
		if s.Hostname != "" && !labelRE.MatchString(s.Hostname) {
			p.at(path+".hostname", "%q is not a valid host name: one DNS label of letters, digits and '-'", s.Hostname)
		}
	}
}

// poolFor returns the pool whose subnet holds a.
func (d *DHCP) poolFor(a netip.Addr) *Pool {
	for i := range d.Pools {
		if d.Pools[i].Subnet.IsValid() && d.Pools[i].Subnet.Contains(a) {
			return &d.Pools[i]
		}
	}
	return nil
}

func validatePool(c *Config, p *problems, path string, pool *Pool, aliases map[string]*Alias) {
	r := pool.Range
	if !r.Start.IsValid() {
		p.at(path, "range is missing: set range = \"192.168.1.100-192.168.1.199\"")
		return
	}
	if !pool.Subnet.IsValid() {
		for _, a := range c.Aliases {
			if a.Address.IsValid() && a.Subnet().Contains(r.Start) {
				pool.Subnet = a.Subnet()
				break
			}
		}
		if !pool.Subnet.IsValid() {
			p.at(path+".range", "range %s is not inside any alias subnet; add subnet = \"a.b.c.0/24\" if it is reached through a DHCP relay", r)
			return
		}
	}
	if !pool.Subnet.Addr().Is4() {
		p.at(path+".subnet", "subnet %s is not IPv4: write the relayed subnet like \"192.168.5.0/24\"", pool.Subnet)
		pool.Subnet = netip.Prefix{}
		return
	}
	pool.Subnet = pool.Subnet.Masked()
	pool.Relayed = !c.onLink(pool.Subnet.Addr())
	switch {
	case !pool.Subnet.Contains(r.Start) || !pool.Subnet.Contains(r.End):
		p.at(path+".range", "range %s is outside its subnet %s", r, pool.Subnet)
	case r.Contains(pool.Subnet.Addr()) || r.Contains(broadcast(pool.Subnet)):
		p.at(path+".range", "range %s includes the network or broadcast address of %s", r, pool.Subnet)
	}
	for _, a := range c.Aliases {
		if a.Address.IsValid() && r.Contains(a.Address.Addr()) {
			p.at(path+".range", "range %s includes %s, the address of alias %q", r, a.Address.Addr(), a.Name)
		}
	}
	if pool.Router != "" {
		var ok bool
		switch pool.RouterAddr, ok = resolveAddr(pool.Router, aliases); {
		case !ok:
			p.at(path+".router", "%q is neither an alias name (%s) nor an IPv4 address", pool.Router, names(aliases))
		case !pool.Subnet.Contains(pool.RouterAddr):
			p.at(path+".router", "router %s is not on the pool's subnet %s; clients could not reach it (name an alias or address on %s)", pool.RouterAddr, pool.Subnet, pool.Subnet)
		}
	} else if c.Router != nil && aliases[c.Router.Alias] != nil && pool.Subnet.Contains(aliases[c.Router.Alias].Address.Addr()) {
		pool.RouterAddr = aliases[c.Router.Alias].Address.Addr()
	}
	pool.DNSAddrs = resolveAddrs(p, path+".dns", pool.DNS, aliases)
	if len(pool.DNS) == 0 && c.DNS != nil && aliases[c.DNS.Alias] != nil {
		pool.DNSAddrs = []netip.Addr{aliases[c.DNS.Alias].Address.Addr()}
	}
	pool.NTPAddrs = resolveAddrs(p, path+".ntp", pool.NTP, aliases)
	if pool.Broadcast.IsValid() && !pool.Subnet.Contains(pool.Broadcast) {
		p.at(path+".broadcast", "broadcast %s is outside the subnet %s", pool.Broadcast, pool.Subnet)
	}
	if !(pool.RenewTime.Duration < pool.RebindTime.Duration && pool.RebindTime.Duration < pool.LeaseTime.Duration) {
		p.at(path, "times must satisfy renew_time (%s) < rebind_time (%s) < lease_time (%s)", pool.RenewTime, pool.RebindTime, pool.LeaseTime)
	}
	for i, rt := range pool.Routes {
		validateRoute(c, p, fmt.Sprintf("%s.route[%d]", path, i), rt, false)
	}
	for i, o := range pool.Options {
		validateOption(p, fmt.Sprintf("%s.option[%d]", path, i), o)
	}
}

// resolveAddr reads an alias name or an IPv4 address.
func resolveAddr(s string, aliases map[string]*Alias) (netip.Addr, bool) {
	if a, ok := aliases[s]; ok {
		return a.Address.Addr(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return a, true
	}
	return netip.Addr{}, false
}

func resolveAddrs(p *problems, path string, list []string, aliases map[string]*Alias) []netip.Addr {
	var out []netip.Addr
	for i, s := range list {
		if a, ok := resolveAddr(s, aliases); ok {
			out = append(out, a)
		} else {
			p.atElem(path, i, "%q is neither an alias name (%s) nor an IPv4 address", s, names(aliases))
		}
	}
	return out
}

func validateOption(p *problems, path string, o Option) {
	if o.Code < 1 || o.Code > 254 {
		p.at(path+".code", "option code %d is outside 1-254", o.Code)
	} else if key, ok := optionsWithKeys[o.Code]; ok {
		p.at(path+".code", "option %d has its own key in [[dhcp.pool]]: use %s instead", o.Code, key)
	} else if what, ok := optionsSetByServer[o.Code]; ok {
		p.at(path+".code", "option %d (%s) is set by gatewayd itself and cannot be configured", o.Code, what)
	}
	set := 0
	for _, b := range []bool{o.Hex != "", o.Text != "", len(o.IP) > 0} {
		if b {
			set++
		}
	}
	if set != 1 {
		p.at(path, "an option needs exactly one of hex = \"0a0b\", text = \"...\" or ip = [\"a.b.c.d\"]")
	}
	if o.Hex != "" {
		if b, err := hex.DecodeString(o.Hex); err != nil || len(b) > 255 {
			p.at(path+".hex", "%q is not hex bytes (at most 255), e.g. \"c0a80101\"", o.Hex)
		}
	}
	if len(o.Text) > 255 {
		p.at(path+".text", "option text is %d bytes; at most 255", len(o.Text))
	}
}
