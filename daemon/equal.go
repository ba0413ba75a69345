package daemon

import (
	"reflect"

	"gatewayd/config"
)

// sameConfig reports whether two configs describe the same desired state (the
// file they came from does not count).
func sameConfig(a, b *config.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.File, y.File = "", ""
	return reflect.DeepEqual(&x, &y)
}
