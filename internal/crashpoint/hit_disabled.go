//go:build !crashpoints

package crashpoint

// Enabled reports whether this build has the crash-point hooks.
const Enabled = false

// Hit does nothing: this build has no crash-point hooks (see the package
// comment), whatever the environment says.
func Hit(string) {}

// SlowPrepare does nothing in this build.
func SlowPrepare(int) {}
