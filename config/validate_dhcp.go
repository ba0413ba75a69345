package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
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

func buildDHCP(f *file, c *Config, p *problems, aliases map[string]*Alias) *DHCP {
	fd := f.DHCP
	if fd == nil {
		return nil
	}
	d := &DHCP{
		Alias:            fd.Alias,
		LeaseTime:        fd.LeaseTime.or(defaultLeaseTime),
		DeclineTime:      fd.DeclineTime.or(defaultDeclineTime),
		OfferTime:        fd.OfferTime.or(defaultOfferTime),
		Authoritative:    fd.Authoritative == nil || *fd.Authoritative,
		ProbeBeforeOffer: fd.ProbeBeforeOffer,
		Pools:            make([]Pool, len(fd.Pools)),
	}
	// A refused lease time is reported once, not again in every pool.
	poolLease := d.LeaseTime
	if !checkDuration(p, "dhcp.lease_time", fd.LeaseTime, leaseSpan, "12h") {
		poolLease = defaultLeaseTime
	}
	checkDuration(p, "dhcp.decline_time", fd.DeclineTime, span{time.Second, maxLeaseTime}, "24h")
	checkDuration(p, "dhcp.offer_time", fd.OfferTime, span{time.Second, time.Hour}, "1m")
	for i := range fd.Pools {
		d.Pools[i] = buildPool(f, c, p, fmt.Sprintf("dhcp.pool[%d]", i), &fd.Pools[i], poolLease, aliases)
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
	d.Static = buildStatics(c, p, d, fd.Static)
	return d
}

func buildStatics(c *Config, p *problems, d *DHCP, list []fileStatic) []Static {
	var out []Static
	macs, ids, addrs := map[string]int{}, map[string]int{}, map[netip.Addr]int{}
	for i, fs := range list {
		s := Static{MAC: net.HardwareAddr(slices.Clone(fs.MAC)), ClientID: fs.ClientID, Address: fs.Address, Hostname: fs.Hostname}
		out = append(out, s)
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
		if n := clientIDLen(s.ClientID); n > maxOptionLen {
			p.at(path+".client_id", "client_id is %d bytes; option 61 holds at most %d", n, maxOptionLen)
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
	return out
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

// buildPool resolves one [[dhcp.pool]]; leaseTime is [dhcp] lease_time.
func buildPool(f *file, c *Config, p *problems, path string, fp *filePool, leaseTime time.Duration, aliases map[string]*Alias) Pool {
	pool := Pool{
		Range:     fp.Range,
		Domain:    fp.Domain,
		Broadcast: fp.Broadcast,
		LeaseTime: fp.LeaseTime.or(leaseTime),
	}
	pool.RenewTime = fp.RenewTime.or(pool.LeaseTime / 2)
	pool.RebindTime = fp.RebindTime.or(pool.LeaseTime * 7 / 8)
	if pool.Domain == "" && f.DNS != nil {
		pool.Domain = orDefault(f.DNS.Domain, DefaultDomain)
	}
	timesOK := checkDuration(p, path+".lease_time", fp.LeaseTime, leaseSpan, "[dhcp] lease_time")
	timesOK = checkDuration(p, path+".renew_time", fp.RenewTime, span{time.Second, maxLeaseTime}, "half the lease") && timesOK
	timesOK = checkDuration(p, path+".rebind_time", fp.RebindTime, span{time.Second, maxLeaseTime}, "7/8 of the lease") && timesOK
	if fp.Domain != "" && !validDomain(fp.Domain) {
		p.at(path+".domain", "%q is not a valid domain name: dot-separated labels of letters, digits and '-', e.g. \"home.arpa\"", fp.Domain)
	}
	r := pool.Range
	if !r.Start.IsValid() {
		p.at(path, "range is missing: set range = \"192.168.1.100-192.168.1.199\"")
		return pool
	}
	if pool.Subnet = fp.Subnet; !pool.Subnet.IsValid() {
		for _, a := range c.Aliases {
			if a.Address.IsValid() && a.Subnet().Contains(r.Start) {
				pool.Subnet = a.Subnet()
				break
			}
		}
		if !pool.Subnet.IsValid() {
			p.at(path+".range", "range %s is not inside any alias subnet; add subnet = \"a.b.c.0/24\" if it is reached through a DHCP relay", r)
			return pool
		}
	}
	if !pool.Subnet.Addr().Is4() {
		p.at(path+".subnet", "subnet %s is not IPv4: write the relayed subnet like \"192.168.5.0/24\"", pool.Subnet)
		pool.Subnet = netip.Prefix{}
		return pool
	}
	pool.Subnet = pool.Subnet.Masked()
	pool.Relayed = !c.onLink(pool.Subnet.Addr())
	if why := reservedIn(pool.Subnet); pool.Relayed && why != "" {
		p.at(path+".subnet", "subnet %s holds %s; a relayed subnet is unicast addresses of your network", pool.Subnet, why)
	}
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
	if fp.Router != "" {
		var ok bool
		switch pool.Router, ok = resolveAddr(fp.Router, aliases); {
		case !ok:
			p.at(path+".router", "%q is neither an alias name (%s) nor an IPv4 address", fp.Router, names(aliases))
		case !pool.Subnet.Contains(pool.Router):
			p.at(path+".router", "router %s is not on the pool's subnet %s; clients could not reach it (name an alias or address on %s)", pool.Router, pool.Subnet, pool.Subnet)
		}
	} else if c.Router != nil && aliases[c.Router.Alias] != nil && pool.Subnet.Contains(aliases[c.Router.Alias].Address.Addr()) {
		pool.Router = aliases[c.Router.Alias].Address.Addr()
	}
	pool.DNS = resolveAddrs(p, path+".dns", fp.DNS, aliases)
	if len(fp.DNS) == 0 && f.DNS != nil && aliases[f.DNS.Alias] != nil {
		pool.DNS = []netip.Addr{aliases[f.DNS.Alias].Address.Addr()}
	}
	pool.NTP = resolveAddrs(p, path+".ntp", fp.NTP, aliases)
	if pool.Broadcast.IsValid() && !pool.Subnet.Contains(pool.Broadcast) {
		p.at(path+".broadcast", "broadcast %s is outside the subnet %s", pool.Broadcast, pool.Subnet)
	}
	if timesOK && !(pool.RenewTime < pool.RebindTime && pool.RebindTime < pool.LeaseTime) {
		p.at(path, "times must satisfy renew_time (%s) < rebind_time (%s) < lease_time (%s)", pool.RenewTime, pool.RebindTime, pool.LeaseTime)
	}
	pool.Routes = buildRoutes(c, p, path, fp.Routes, false)
	checkRoutesLen(p, path, pool)
	codes := map[int]int{}
	for i, o := range fp.Options {
		opath := fmt.Sprintf("%s.option[%d]", path, i)
		if j, dup := codes[o.Code]; dup {
			p.at(opath+".code", "option %d is already set on line %d; one [[dhcp.pool.option]] per code", o.Code, p.line(fmt.Sprintf("%s.option[%d].code", path, j)))
		}
		codes[o.Code] = i
		pool.Options = append(pool.Options, buildOption(p, opath, o))
	}
	return pool
}

// leaseSpan bounds lease times: under a minute clients renew without pause,
// and a year is longer than any address plan lives.
var leaseSpan = span{time.Minute, maxLeaseTime}

// checkRoutesLen refuses classless routes that do not fit option 121 (one
// byte of prefix length, the significant octets, the router), counting the
// default route the server adds when the pool has a router.
func checkRoutesLen(p *problems, path string, pool Pool) {
	n := 0
	if pool.Router.IsValid() && len(pool.Routes) > 0 {
		n = 1 + 4
	}
	for i, rt := range pool.Routes {
		if n += 1 + (rt.To.Bits()+7)/8 + 4; n > maxOptionLen {
			p.at(fmt.Sprintf("%s.route[%d]", path, i), "the classless routes (option 121) pass %d bytes with this one; an option holds at most %d", maxOptionLen, maxOptionLen)
			return
		}
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

// resolveAddrs reads the servers a pool hands out (dns, ntp).
func resolveAddrs(p *problems, path string, list []string, aliases map[string]*Alias) []netip.Addr {
	var out []netip.Addr
	for i, s := range list {
		a, ok := resolveAddr(s, aliases)
		switch {
		case i == maxOptionAddrs:
			p.atElem(path, i, "more than %d addresses; the option holds at most %d", maxOptionAddrs, maxOptionAddrs)
			return out
		case ok && reservedAddr(a) != "":
			p.atElem(path, i, "%s is %s; clients cannot use it as a server", a, reservedAddr(a))
		case ok:
			out = append(out, a)
		default:
			p.atElem(path, i, "%q is neither an alias name (%s) nor an IPv4 address", s, names(aliases))
		}
	}
	return out
}

// buildOption checks an option and encodes its value in wire form.
func buildOption(p *problems, path string, o fileOption) Option {
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
	for i, a := range o.IP {
		if i == maxOptionAddrs {
			p.atElem(path+".ip", i, "more than %d addresses; an option holds at most %d", maxOptionAddrs, maxOptionAddrs)
			break
		}
		if !a.Is4() {
			p.atElem(path+".ip", i, "%s is not IPv4; DHCPv4 options carry IPv4 addresses", a)
		}
	}
	return Option{Code: o.Code, Value: optionValue(o), Always: o.Always}
}

// optionValue is the option's value as it goes on the wire: the hex bytes, the
// text, or each address as 4 bytes. Validation refuses any other shape.
func optionValue(o fileOption) []byte {
	switch {
	case o.Hex != "":
		b, _ := hex.DecodeString(o.Hex)
		return b
	case o.Text != "":
		return []byte(o.Text)
	}
	var b []byte
	for _, a := range o.IP {
		if a.Is4() {
			v := a.As4()
			b = append(b, v[:]...)
		}
	}
	return b
}

// clientIDLen is the length of a client_id on the wire: colon hex
// ("01:00:0d:61:0b:d9:a0") is bytes, anything else is text (dnsmasq's
// convention, which the DHCP role follows).
func clientIDLen(id string) int {
	if strings.Contains(id, ":") {
		if b, err := hex.DecodeString(strings.NewReplacer(":", "", "-", "").Replace(id)); err == nil && len(b) > 0 {
			return len(b)
		}
	}
	return len(id)
}
