//go:build !linux

package kafkademo

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
