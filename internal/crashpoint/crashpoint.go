// Package crashpoint kills the process at named points of the commit path,
// for the exactly-once crash tests.
//
// The hooks exist only in binaries built with the build tag `crashpoints`
// (the crash tests build the CLI that way). There, HELIOS_CRASHPOINT set to
// NAME or NAME:N kills the process with SIGKILL the Nth time NAME is reached
// (default 1). In every other build Hit is an empty function, so a
// production binary never kills itself because of its environment.
package crashpoint

// Names of the crash points, in commit order.
const (
	BeforePrepare     = "before-prepare"      // transaction built, nothing written
	AfterSinkWrite    = "after-sink-write"    // sink bytes written, not yet synced
	AfterPrepare      = "after-prepare"       // every participant prepared, no decision
	BeforeOffsetWrite = "before-offset-write" // decision batch (offsets, state, record) staged, not applied
	AfterDecision     = "after-decision"      // decision durable, phase 2 not run
	AfterCommit       = "after-commit"        // phase 2 done
	// DuringRestore: a kafka: pipeline in a consumer group has applied part
	// of a partition's state changelog to its data directory.
	DuringRestore = "during-restore"
	// AfterTimeoutAbort: a transaction of several batches timed out and was
	// aborted with its effects held; its halves are not committed yet.
	AfterTimeoutAbort = "after-timeout-abort"
)

// SlowEnvVar names the environment variable of SlowPrepare.
const SlowEnvVar = "HELIOS_SLOW_PREPARE"

// EnvVar names the environment variable read by builds with the tag.
const EnvVar = "HELIOS_CRASHPOINT"

// BuildTag is the build tag that compiles the hooks in.
const BuildTag = "crashpoints"
