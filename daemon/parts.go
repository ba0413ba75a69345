package daemon

import (
	"encoding/json"
	"log/slog"

	"gatewayd/config"
)

// openParts creates the firewall and the roles, in apply order.
func openParts(c *config.Config, log *slog.Logger) ([]Part, map[string]func(json.RawMessage) (any, error), error) {
	return nil, nil, nil
}

// openPurgers creates what `gatewayd purge` needs of each subsystem.
func openPurgers(c *config.Config, log *slog.Logger) ([]purger, error) {
	return nil, nil
}

// planners returns parts that can plan without the kernel, for `gatewayd plan`
// when the daemon is not running.
func planners(c *config.Config) []Part {
	return nil
}
