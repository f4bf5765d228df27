// Package crashpoint kills the process at named points of the commit path,
// for the exactly-once crash tests. It is inert unless HELIOS_CRASHPOINT is
// set, as NAME or NAME:N (crash at the Nth time NAME is reached; default 1).
package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Names of the crash points, in commit order.
const (
	BeforePrepare     = "before-prepare"      // transaction built, nothing written
	AfterSinkWrite    = "after-sink-write"    // sink bytes written, not yet synced
	AfterPrepare      = "after-prepare"       // every participant prepared, no decision
	BeforeOffsetWrite = "before-offset-write" // decision batch (offsets, state, record) staged, not applied
	AfterDecision     = "after-decision"      // decision durable, phase 2 not run
	AfterCommit       = "after-commit"        // phase 2 done
)

var (
	name  string
	after int64
	hits  atomic.Int64
)

func init() {
	spec := os.Getenv("HELIOS_CRASHPOINT")
	if spec == "" {
		return
	}
	name, after = spec, 1
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		if n, err := strconv.ParseInt(spec[i+1:], 10, 64); err == nil && n > 0 {
			name, after = spec[:i], n
		}
	}
}

// Hit kills the process with SIGKILL if point is the configured crash point
// and has now been reached the configured number of times.
func Hit(point string) {
	if name == "" || point != name {
		return
	}
	if hits.Add(1) == after {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never return while the signal is delivered
	}
}
