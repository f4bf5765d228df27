package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/runtime"
)

// commitFlags tune transactions and checkpoints (run and serve). Seed
// names are read after HELIOS_<FLAG>: MAX_QUEUE_DEPTH, TRANSACTION_TIMEOUT.
func commitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.GenericFlag{Name: "transaction-timeout", Value: &seconds{runtime.DefaultTxnTimeout}, EnvVars: []string{"TRANSACTION_TIMEOUT"},
			Usage: "abort a transaction not prepared within this `DURATION` (Go duration, or plain seconds): one of several batches is committed again as smaller ones, a single batch stops the run"},
		&cli.Int64Flag{Name: "checkpoint-every", Value: runtime.DefaultCheckpointEvery, Usage: "write an offsets checkpoint after this many records"},
		&cli.IntFlag{Name: "checkpoints-keep", Value: runtime.DefaultKeepCheckpoints, Usage: "offsets checkpoints kept per pipeline (older ones are deleted in the same transaction)"},
		&cli.IntFlag{Name: "max-queue-depth", Value: runtime.DefaultMaxQueueDepth, EnvVars: []string{"MAX_QUEUE_DEPTH"}, Usage: "processed batches waiting for the committer"},
	}
}

// commitSettings are the commit flags' values, once validated.
type commitSettings struct {
	txnTimeout      time.Duration
	checkpointEvery int64
	checkpointsKeep int
	maxQueueDepth   int
}

// validate reports every bad value; where names a flag's source in the
// message.
func (s commitSettings) validate(where func(flag string) string) error {
	var errs []error
	if s.txnTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s %v: must be positive", where("transaction-timeout"), s.txnTimeout))
	}
	if s.checkpointEvery < 1 {
		errs = append(errs, fmt.Errorf("%s %d: at least 1 record", where("checkpoint-every"), s.checkpointEvery))
	}
	if s.checkpointsKeep < 1 {
		errs = append(errs, fmt.Errorf("%s %d: at least 1", where("checkpoints-keep"), s.checkpointsKeep))
	}
	if s.maxQueueDepth < 1 {
		errs = append(errs, fmt.Errorf("%s %d: at least 1", where("max-queue-depth"), s.maxQueueDepth))
	}
	return errors.Join(errs...)
}

// apply sets the commit settings in cfg.
func (s commitSettings) apply(cfg *runtime.Config) {
	cfg.TxnTimeout, cfg.CheckpointEvery, cfg.KeepCheckpoints = s.txnTimeout, s.checkpointEvery, s.checkpointsKeep
	cfg.Flow.MaxQueueDepth = s.maxQueueDepth
}

// commitFromFlags reads the commit flags (their value, default or env).
func commitFromFlags(c *cli.Context) commitSettings {
	return commitSettings{
		txnTimeout:      c.Generic("transaction-timeout").(*seconds).d,
		checkpointEvery: c.Int64("checkpoint-every"),
		checkpointsKeep: c.Int("checkpoints-keep"),
		maxQueueDepth:   c.Int("max-queue-depth"),
	}
}

// seconds is a duration written as a Go duration ("45s", "2m") or, as the
// seed's TRANSACTION_TIMEOUT was, a plain number of seconds ("45", "1.5").
type seconds struct{ d time.Duration }

func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as 30s or 2m, or a number of seconds", s)
	}
	return d, nil
}

func (v *seconds) Set(s string) error {
	d, err := parseSeconds(s)
	if err != nil {
		return err
	}
	v.d = d
	return nil
}

func (v *seconds) String() string {
	if v == nil {
		return ""
	}
	return v.d.String()
}
