package crashpoint

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// childEnv makes the test binary, run again as a child, reach a crash point
// instead of running the tests.
const childEnv = "HELIOS_CRASHPOINT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "slow" {
		start := time.Now()
		SlowPrepare(1) // one batch: never slowed
		for range 3 {
			SlowPrepare(2)
		}
		fmt.Print(time.Since(start).Milliseconds())
		os.Exit(0)
	}
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

// TestSlowPrepare runs the test binary as a child that prepares one
// transaction of one batch and three of two with HELIOS_SLOW_PREPARE=100ms:2:
// built with the tag, the first two of several batches take 100 ms each;
// without it nothing is slowed.
func TestSlowPrepare(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=slow", SlowEnvVar+"=100ms:2")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	ms, err := strconv.Atoi(string(out))
	if err != nil {
		t.Fatalf("child printed %q", out)
	}
	if Enabled && (ms < 200 || ms >= 300) || !Enabled && ms >= 100 {
		t.Fatalf("the child's prepares took %d ms (Enabled=%v), want 200-299 with the tag, under 100 without", ms, Enabled)
	}
}
