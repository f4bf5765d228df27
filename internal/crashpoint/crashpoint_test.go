package crashpoint

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// childEnv makes the test binary, run again as a child, reach a crash point
// instead of running the tests.
const childEnv = "HELIOS_CRASHPOINT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		for i := 0; i < 3; i++ {
			Hit(BeforePrepare)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHitHonoursBuildTag runs this test binary as a child with
// HELIOS_CRASHPOINT set and a crash point reached three times. Built with
// -tags crashpoints the child must be killed there; built without (as every
// production binary is) it must ignore the variable and exit 0. Under `go
// test` without the tag it proves the second; `make test` also runs it with
// the tag.
func TestHitHonoursBuildTag(t *testing.T) {
	for _, tc := range []struct {
		spec   string
		killed bool
	}{
		{BeforePrepare, Enabled},
		{BeforePrepare + ":3", Enabled},
		{BeforePrepare + ":4", false}, // reached only three times
		{AfterCommit, false},          // another point
	} {
		t.Run(tc.spec, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=1", EnvVar+"="+tc.spec)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			switch {
			case err == nil:
				if tc.killed {
					t.Fatalf("%s=%s (Enabled=%v): the child exited 0, want it killed\n%s", EnvVar, tc.spec, Enabled, out)
				}
			case errors.As(err, &ee) && !ee.Exited():
				if !tc.killed {
					t.Fatalf("%s=%s (Enabled=%v): the child was killed (%v), want exit 0\n%s", EnvVar, tc.spec, Enabled, err, out)
				}
			default:
				t.Fatalf("%s=%s: child failed: %v\n%s", EnvVar, tc.spec, err, out)
			}
		})
	}
}
