//go:build crashpoints

package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Enabled reports whether this build has the crash-point hooks.
const Enabled = true

var (
	name  string
	after int64
	hits  atomic.Int64

	slowFor  time.Duration
	slowLeft atomic.Int64
)

func init() {
	if spec := os.Getenv(SlowEnvVar); spec != "" {
		d, n, _ := strings.Cut(spec, ":")
		slowFor, _ = time.ParseDuration(d)
		left, _ := strconv.ParseInt(n, 10, 64)
		slowLeft.Store(left)
	}
	spec := os.Getenv(EnvVar)
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

// Hit kills the process (SIGKILL on unix, TerminateProcess on Windows) if
// point is the configured crash point and has now been reached the
// configured number of times.
func Hit(point string) {
	if name == "" || point != name {
		return
	}
	if hits.Add(1) == after {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Kill()
		}
		select {} // never return while the signal is delivered
	}
}

// SlowPrepare sleeps for the configured duration while a transaction of
// batches batches prepares, for the first N such transactions.
func SlowPrepare(batches int) {
	if batches > 1 && slowFor > 0 && slowLeft.Add(-1) >= 0 {
		time.Sleep(slowFor)
	}
}
