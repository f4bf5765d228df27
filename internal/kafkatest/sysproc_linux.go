package kafkatest

import "syscall"

// sysProcAttr puts a node in its own process group (a signal to the test's
// group never reaches it) and kills it if the test process dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
