package lab

import (
	"bytes"
	"os/exec"
	"runtime"
)

// Commands made by Namespace.Command carry Pdeathsig, so they die with the
// test binary. The kernel sends that signal when the *thread* that forked
// the child exits, not the process, and Go threads do exit: a goroutine that
// locks its thread (namespace work does) and ends takes the thread with it,
// and any peer an unrelated goroutine happened to fork from that thread was
// killed mid-test. So every lab command is started from one thread that is
// locked for the life of the process and never leaves this namespace.
type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var spawner = func() chan spawnRequest {
	ch := make(chan spawnRequest)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread lives as long as the process
		for req := range ch {
			req.done <- req.cmd.Start()
		}
	}()
	return ch
}()

// start starts cmd from the spawner thread.
func start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawner <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// CombinedOutput is cmd.CombinedOutput for a command made by
// Namespace.Command, started from the spawner thread.
func CombinedOutput(cmd *exec.Cmd) ([]byte, error) {
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := start(cmd); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	return b.Bytes(), err
}
