package runtime

import (
	"errors"

	"github.com/heliosdb/helios-wasm/runtime/internal/kafka"
)

// Errors a pipeline returns, wrapped with what failed and where; test them
// with errors.Is. Each says who acts: the input's author (bad input), the
// operator (ErrRecordFailed), the owner of an output or a data directory,
// or whoever runs the cluster.
var (
	// ErrAtLeastOnce refuses a pipeline that can only be at-least-once (a
	// source that cannot be re-read, such as stdin, or a sink that cannot
	// take outputs back, such as stdout) unless Config.AtLeastOnce accepts
	// it.
	ErrAtLeastOnce = errors.New("this pipeline can only be at-least-once")
	// ErrBadInput marks an input record that cannot be read (for example
	// a line that is not JSON). The CLI exits with status 2.
	ErrBadInput = errors.New("bad input")
	// ErrRecordTooLarge marks an input record longer than
	// Config.MaxRecordBytes (it also matches ErrBadInput).
	ErrRecordTooLarge = errors.New("input record too large")
	// ErrInputReplaced means the input file is not the file the committed
	// position refers to: it was replaced, rewritten or truncated since.
	ErrInputReplaced = errors.New("input file replaced since the last commit")
	// ErrRecordFailed means the operator marked an input record as failed
	// and the pipeline runs without a dead-letter queue: it stops, with
	// everything before the record's batch committed.
	ErrRecordFailed = errors.New("operator failed a record")
	// ErrDLQFull means a batch's dead letters do not fit in the queue.
	ErrDLQFull = errors.New("dead-letter queue full")
	// ErrNoEntry means the dead-letter entry does not exist.
	ErrNoEntry = errors.New("no such dead-letter entry")
	// ErrOutputBusy means another open sink (in this process or another)
	// is writing the output file.
	ErrOutputBusy = errors.New("output file in use by another running pipeline")
	// ErrOutputModified means the output file no longer holds what was
	// committed.
	ErrOutputModified = errors.New("output file modified outside helios-wasm")
	// ErrOutputOwned means the output file belongs to another pipeline.
	ErrOutputOwned = errors.New("output file belongs to another pipeline")
	// ErrNotRunning means the pipeline is not (yet, or any more)
	// processing.
	ErrNotRunning = errors.New("pipeline is not running")
	// ErrFleetDeadLetters refuses a dead-letter retry of a kafka: fleet
	// (a kafka: input shared through a consumer group, into a kafka:
	// output): its dead letters are the records of the Kafka topic
	// PIPELINE-dlq, and a data directory only keeps a copy of those its
	// instance committed. A retry from there would commit outside the
	// fleet's transactions (no group offsets, with state another instance
	// may own) and could duplicate outputs or lose state updates.
	ErrFleetDeadLetters = errors.New("a kafka: fleet's dead letters are not retried from a data directory")

	// Kafka, at start: ErrKafkaUnreachable and ErrKafkaAuth are about the
	// cluster (retry once it is fixed), ErrKafkaTopicMissing about the
	// pipeline's configuration.
	ErrKafkaUnreachable  = kafka.ErrUnreachable
	ErrKafkaAuth         = kafka.ErrAuth
	ErrKafkaTopicMissing = kafka.ErrTopicMissing
	// ErrKafkaOffsetsBehind means a partition holds fewer records than the
	// pipeline committed (the topic was recreated).
	ErrKafkaOffsetsBehind = errors.New("kafka: partition is behind the committed position")
)
