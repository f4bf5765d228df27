//go:build !unix

package main

import (
	"os/exec"
	"testing"
)

// asUser is unix-only: no other system runs the tests as root.
func asUser(t testing.TB, _, _ uint32) func(*exec.Cmd) {
	t.Fatal("asUser: running as another user needs a unix system")
	return nil
}
