package kafkademo

import "syscall"

// sysProcAttr puts an instance in its own process group (the demo alone
// decides when it stops: a terminal's Ctrl-C reaches the demo, which stops
// it) and kills it if the demo dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
