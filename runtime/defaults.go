package runtime

import "time"

// Defaults of Config: a zero field takes its default. The CLI shows the
// same values as its flags' defaults.
const (
	DefaultBatchSize        = 1000
	DefaultMaxBatchBytes    = 16 << 20
	DefaultMaxRecordBytes   = 8 << 20
	DefaultMaxBatchesPerTxn = 16
	DefaultTxnTimeout       = 30 * time.Second
	DefaultKeepDecisions    = 1000
	DefaultCheckpointEvery  = 10_000
	DefaultKeepCheckpoints  = 10
	DefaultDeadLetterMax    = 10_000
	DefaultArchiveMax       = 100_000
	DefaultRetryBackoff     = 100 * time.Millisecond
	DefaultKeepVersions     = 10
	DefaultMaxInflightBytes = 64 << 20
	DefaultMaxQueueDepth    = 8
	DefaultBatchTarget      = 100 * time.Millisecond
)
