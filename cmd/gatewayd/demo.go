package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"gatewayd/lab"
)

// demo runs the namespace lab demonstration with this very binary.
func demo(ctx context.Context, keep bool, out io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the demo builds network namespaces and needs root (sudo make demo)")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the gatewayd binary: %w", err)
	}
	return lab.Demo(ctx, out, self, keep)
}
