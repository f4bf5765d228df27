//go:build !linux

package localkafka

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
