package localkafka

import "syscall"

// sysProcAttr puts a node in its own process group (a signal to the
// starting process's group, such as a terminal's Ctrl-C, never reaches it)
// and kills it if the starting process dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
