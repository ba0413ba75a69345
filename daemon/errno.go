package daemon

import "syscall"

var errConnRefused = syscall.ECONNREFUSED
