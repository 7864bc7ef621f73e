package redistest

import "syscall"

// sysProcAttr kills the server when the process that started it dies, so
// that no server outlives a crashed test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
