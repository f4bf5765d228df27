//go:build unix

package main

import (
	"os/exec"
	"syscall"
	"testing"
)

// asUser makes a command run as uid:gid (the test runs as root).
func asUser(_ testing.TB, uid, gid uint32) func(*exec.Cmd) {
	return func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
}
