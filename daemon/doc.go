// Package daemon is gatewayd's controller: it holds the running generation (the
// config last applied), turns a new config into a plan, applies it across the
// aliases, the firewall and the roles with rollback on failure, and serves the
// control socket the CLI talks to. It owns no kernel object itself: every kernel
// write goes through the subsystem that owns it (aliases, firewall, roles).
package daemon
