package testutil

import "testing"

// Make runs `make TARGET` at the repository root (serialised across test
// processes), for test dependencies the Makefile fetches.
func Make(t testing.TB, target string) {
	t.Helper()
	makeTarget(t, target)
}
