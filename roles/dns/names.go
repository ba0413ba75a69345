package dns

import "strings"

// The helpers below turn names as the site file spells them into the
// role's terms. The controller uses them to fill Config; the role uses
// LeaseLabel on the names DHCP clients send.

// FQDN is name in lower case with the final dot.
func FQDN(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

// Qualify puts a config name under the domain (an FQDN): "nas" and
// "nas.home.arpa" are both nas.home.arpa.; "printer.lab" is
// printer.lab.home.arpa.
func Qualify(name, domain string) string {
	n := FQDN(name)
	if inDomain(n, domain) {
		return n
	}
	return n + domain
}

// CNAMETarget reads a CNAME target: a single label is a local name, a name
// ending in the domain is too, and any other dotted name is absolute
// ("www.example.com" stays www.example.com.).
func CNAMETarget(name, domain string) string {
	n := FQDN(name)
	if isSingleLabel(n) && n != domain {
		return n + domain
	}
	return n
}
