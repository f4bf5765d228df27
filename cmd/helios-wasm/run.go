package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/runtime"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run a pipeline: source -> WebAssembly operator -> sink, committed exactly once",
		Description: "Reads the input in batches, calls the operator once per batch, and commits outputs, input offsets and\n" +
			"operator state in one transaction. Without --follow a file: or log: input is processed to its end (as of\n" +
			"start) and the command exits 0. Rerunning the same command after any interruption resumes exactly after\n" +
			"the last commit; rerunning a finished job outputs nothing twice. SIGINT/SIGTERM commit the batch in\n" +
			"flight and exit 0 (a second signal exits 130 at once; the batch is reprocessed on the next run).\n\n" +
			"Records the operator fails, records that make the plugin trap (isolated by bisecting the batch) and input\n" +
			"lines that are not JSON go to the pipeline's dead-letter queue in the same transaction (see `helios-wasm dlq`).\n\n" +
			"Inputs:  file:PATH (JSON Lines, one record per newline-terminated line; see --final-line), log:TOPIC (embedded log),\n" +
			"         kafka:TOPIC (every partition, read_committed; its offsets commit with the outputs), - (stdin, at-least-once: with --at-least-once)\n" +
			"Outputs: file:PATH (JSON Lines, one line per output value), log:TOPIC, - (stdout, at-least-once: with --at-least-once)\n" +
			"A file: output belongs to the pipeline that first wrote it (owner record .NAME.helios-owner next to it);\n" +
			"a replaced file: input is refused (see --from-start).\n\n" +
			"Example:\n" +
			"  helios-wasm run --plugin build/plugins/go/filter.wasm --config field=user --config equals=u1 \\\n" +
			"      --input file:events.jsonl --output file:u1.jsonl",
		Flags: withEnv(append([]cli.Flag{
			pluginFlag(),
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Required: true, Usage: "source: file:PATH, log:TOPIC, kafka:TOPIC or -"},
			outputFlag(),
			dataDirFlag(),
			&cli.StringFlag{Name: "name", Usage: "pipeline name (offsets and state live under it); default: derived from --input and --output"},
			configFlag(),
			batchSizeFlag(),
			&cli.BoolFlag{Name: "at-least-once", Usage: "accept stdin as input or stdout as output (- for either), which can only be at-least-once: stdin cannot be read again after a crash, stdout cannot take outputs back"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep tailing the input instead of stopping at its end (a rotated file: renamed or copytruncated: is followed to the new file)"},
			&cli.BoolFlag{Name: "final-line", Usage: "the input file is complete: take a last line without newline as a record (default: leave it uncommitted, a writer may be in the middle of it)"},
			&cli.BoolFlag{Name: "from-start", Usage: "if the input file was replaced, rewritten or truncated since the last commit, process it from its start under the same --name (an unchanged file resumes as usual)"},
			&cli.IntFlag{Name: "max-record-bytes", Value: runtime.DefaultMaxRecordBytes, Usage: "longest input record; a longer one is skipped and dead-lettered (code 111), or stops the run with --no-dlq"},
			&cli.BoolFlag{Name: "watch", Usage: "hot-swap the plugin when its file changes (validated like any swap)"},
			&cli.IntFlag{Name: "dlq-max", Value: 10_000, Usage: "dead-letter queue bound; a batch that does not fit stops a bounded run (exit 1) and pauses a --follow run until dlq retry/purge make room (no record is ever dropped)"},
			&cli.BoolFlag{Name: "no-dlq", Usage: "stop at the first failed, poison or malformed record instead of dead-lettering it"},
			&cli.StringFlag{Name: "id-field", Usage: "take each record's message id from this JSON field and skip duplicates within --dedup-window"},
			&cli.StringFlag{Name: "id-header", Usage: "take each record's message id from this header and skip duplicates within --dedup-window"},
			&cli.BoolFlag{Name: "dedup", Usage: "skip duplicate message ids (implied by --id-field/--id-header; useful on log: inputs whose producer set ids)"},
			&cli.DurationFlag{Name: "dedup-window", Value: 5 * time.Minute, Usage: "how long a message id is remembered"},
			&cli.StringFlag{Name: "admin", Value: "127.0.0.1:8080", Usage: "serve the admin API, /metrics, /healthz and /readyz on this address (empty: off; the default is skipped with a warning if taken)", EnvVars: []string{"HELIOS_ADMIN"}},
			&cli.StringFlag{Name: "admin-token", Usage: "bearer token the admin API requires on mutating requests (default: the data directory's admin.token, generated on first start)", EnvVars: []string{"HELIOS_ADMIN_TOKEN"}},
			&cli.StringSliceFlag{Name: "admin-allowed-hosts", Usage: "extra `HOST[:PORT]` values the admin API accepts in the Host header (repeatable; default: only --admin's own address, and its localhost forms on loopback)", EnvVars: []string{"HELIOS_ADMIN_ALLOWED_HOSTS"}},
			&cli.IntFlag{Name: "keep-versions", Value: runtime.DefaultKeepVersions, Usage: "plugin versions kept for rollback; older ones are pruned with their modules (never the running one or the rollback target)"},
			&cli.Int64Flag{Name: "max-inflight-bytes", Value: 64 << 20, Usage: "bytes read but not yet committed; reading waits beyond it (capped at a quarter of --memory-limit)"},
			&cli.IntFlag{Name: "memory-limit", Value: 256, Usage: "process memory budget in MiB: sizes the Go heap limit, Pebble's memtables and the in-flight bytes"},
			&cli.IntFlag{Name: "batch-min", Usage: "dynamic batch size lower bound (default: --batch-size, i.e. fixed batches)"},
			&cli.IntFlag{Name: "batch-max", Usage: "dynamic batch size upper bound (default: --batch-size)"},
			&cli.DurationFlag{Name: "batch-target", Value: 100 * time.Millisecond, Usage: "operator time per batch that dynamic sizing aims at"},
			&cli.IntFlag{Name: "max-retries", Usage: "retry a record the operator marks retryable this many times (backoff from 100ms) before dead-lettering it"},
			&cli.StringFlag{Name: "schema", Usage: "reader schema `SUBJECT[@VERSION]` (default VERSION: the latest): every input record is validated against the version its helios-schema header names (none: the subject's first version) and migrated to this one before the operator; one that cannot be goes to the dead-letter queue (code 112)"},
			&cli.StringFlag{Name: "output-schema", Usage: "validate every output against `SUBJECT[@VERSION]` (default VERSION: the latest) and set its helios-schema header; an invalid output fails its input record (code 112)"},
			&cli.IntFlag{Name: "archive-max", Value: 100_000, Usage: "for stdin input: keep the last `N` records for helios-wasm replay --input archive:NAME (0: none)"},
		}, slices.Concat(commitFlags(), eventTimeFlags(), engineFlags(), kafkaFlags())...)),
		Action:       runAction,
		OnUsageError: onUsageError,
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("run takes no arguments, got %q (see --help)", c.Args().Slice())
	}
	if c.Int("batch-size") < 1 {
		return usagef("--batch-size must be at least 1")
	}
	if c.Int("max-record-bytes") < 1 {
		return usagef("--max-record-bytes must be at least 1, got %d", c.Int("max-record-bytes"))
	}
	if c.Int("keep-versions") < 2 {
		return usagef("--keep-versions %d: at least 2 (the running version and the rollback target)", c.Int("keep-versions"))
	}
	commit := commitFromFlags(c)
	if err := commit.validate(func(flag string) string { return flagSource(c, flag) }); err != nil {
		return usageError{err}
	}
	cfgPairs, err := parseConfig(c.StringSlice("config"))
	if err != nil {
		return err
	}
	eventTime, err := eventTimeFromFlags(c).config(func(flag string) string { return flagSource(c, flag) })
	if err != nil {
		return usageError{err}
	}
	if eventTime != nil && c.Bool("no-dlq") && eventTime.LateOutput == "dlq" {
		return usagef("%s dlq: --no-dlq turns the dead-letter queue off; choose --late-output log:TOPIC or drop", flagSource(c, "late-output"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	limit := int64(c.Int("memory-limit")) << 20
	if limit < 32<<20 {
		return usagef("--memory-limit %d MiB: at least 32 MiB", c.Int("memory-limit"))
	}
	// Budget: Go heap (processing, in-flight batches) about half, Pebble's
	// memtables (outside the Go heap's accounting) an eighth each.
	debug.SetMemoryLimit(limit / 2)
	inflight := min(c.Int64("max-inflight-bytes"), limit/4)
	env, err := openRunEnv(ctx, c, c.String("plugin"), int(min(max(limit>>20/8, 4), 64)))
	if err != nil {
		return err
	}
	defer env.close(ctx)
	plugin, db := env.plugin, env.db
	// Other commands (produce, consume, topics) reach this data directory
	// through this process while it holds the lock.
	dataSrv, err := admin.ServeData(db)
	if err != nil {
		slog.Warn("cannot serve the data directory to other commands", "error", err)
	} else {
		defer dataSrv.Close(context.Background())
	}
	src, err := runtime.ParseSource(ctx, c.String("input"), runtime.Endpoints{DB: db, Kafka: kafkaConfig(c)})
	if err != nil {
		return sourceError(err)
	}
	if cl, ok := src.(io.Closer); ok {
		defer cl.Close() // after the pipeline: a kafka: input reports its last offsets to its group
	}
	sink, err := runtime.ParseSink(ctx, c.String("output"), runtime.Endpoints{DB: db, Kafka: kafkaConfig(c)}, src.Partitions())
	if err != nil {
		return sourceError(err)
	}
	defer sink.Close()
	name := c.String("name")
	if name == "" {
		name = defaultPipelineName(src.Identity(), sink.Identity())
	}
	var dedup *runtime.DedupConfig
	if c.Bool("dedup") || c.String("id-field") != "" || c.String("id-header") != "" {
		if c.Duration("dedup-window") <= 0 {
			return usagef("--dedup-window must be positive")
		}
		dedup = &runtime.DedupConfig{Window: c.Duration("dedup-window"), IDField: c.String("id-field"), IDHeader: c.String("id-header")}
	}
	readerSchema, outputSchema, err := pipelineSchemas(db, c.String("schema"), c.String("output-schema"), "--schema", "--output-schema")
	if err != nil {
		return err
	}
	reg, metrics := newMetrics()
	var adminSrv *admin.Server
	if addr := c.String("admin"); addr != "" {
		adminSrv, err = startAdmin(db, addr, c.String("admin-token"), c.StringSlice("admin-allowed-hosts"), reg)
		switch {
		case err != nil && c.IsSet("admin"):
			return usageError{err}
		case err != nil: // the default address is taken (another pipeline): run without it
			slog.Warn("admin API not started; pass --admin ADDR to choose another address", "error", err)
		default:
			defer adminSrv.Close(context.Background())
			lvl := slog.LevelDebug // a batch run finishes soon: keep its output quiet
			if c.Bool("follow") || c.IsSet("admin") {
				lvl = slog.LevelInfo
			}
			slog.Log(context.Background(), lvl, "admin API listening", "addr", "http://"+adminSrv.Addr(), "endpoints", "/metrics /healthz /readyz /v1/pipelines")
		}
	}
	pcfg := runtime.Config{
		Name: name, DB: db, Plugin: plugin, PluginConfig: cfgPairs,
		Source: src, Sink: sink, BatchSize: c.Int("batch-size"), Follow: c.Bool("follow"),
		FinalLine: c.Bool("final-line"), FromStart: c.Bool("from-start"), MaxRecordBytes: c.Int("max-record-bytes"),
		DeadLetterMax: c.Int("dlq-max"), DisableDeadLetter: c.Bool("no-dlq"), Dedup: dedup, AtLeastOnce: c.Bool("at-least-once"),
		ArchiveMax: max(c.Int("archive-max"), 0), DisableArchive: c.Int("archive-max") <= 0, MaxRetries: c.Int("max-retries"),
		Metrics: metrics, KeepVersions: c.Int("keep-versions"), Schema: readerSchema, OutputSchema: outputSchema, EventTime: eventTime,
		Flow: runtime.FlowConfig{MaxInflightBytes: inflight, BatchMin: c.Int("batch-min"), BatchMax: c.Int("batch-max"), BatchTarget: c.Duration("batch-target")},
	}
	commit.apply(&pcfg)
	p, err := runtime.New(pcfg)
	if err != nil {
		return usageError{err}
	}
	if err := runtime.SavePipelineInfo(db, runtime.PipelineInfo{Name: name, Input: c.String("input"), Output: c.String("output"),
		Plugin: c.String("plugin"), PluginHash: plugin.Hash(), Config: c.StringSlice("config"), Window: windowSpec(eventTime)}); err != nil {
		return err
	}

	defer onSignals(p.Stop)()

	if dataSrv != nil {
		dataSrv.Register(p)
	}
	if adminSrv != nil {
		adminSrv.Register(p)
		go func() {
			select {
			case <-p.Ready():
				adminSrv.SetReady(true)
			case <-ctx.Done():
			}
		}()
	}
	if c.Bool("watch") {
		go func() {
			select {
			case <-p.Ready():
				watchPlugin(ctx, p, c.String("plugin"), cfgPairs)
			case <-ctx.Done():
			}
		}()
	}
	stopProgress := func() {}
	if strings.HasPrefix(c.String("input"), "file:") && !c.Bool("follow") {
		if st, err := os.Stat(strings.TrimPrefix(c.String("input"), "file:")); err == nil {
			progCtx, cancelProgress := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); showProgress(progCtx, p, st.Size()) }()
			stopProgress = func() { cancelProgress(); <-done }
		}
	}
	slog.Debug("pipeline starting", "pipeline", name, "plugin", plugin.Name(), "plugin_hash", plugin.ShortHash(),
		"input", src.Identity(), "output", sink.Identity(), "data_dir", db.Dir())
	stats, err := p.Run(ctx)
	stopProgress()
	rate := 0.0
	if s := stats.Elapsed.Seconds(); s > 0 {
		rate = float64(stats.RecordsIn) / s
	}
	resumed := ""
	if stats.Resumed {
		resumed = " (resumed after the last commit)"
	}
	fmt.Fprintf(os.Stderr, "pipeline %s: %d records in, %d out, %d transactions in %v (%.0f records/s)%s\n",
		name, stats.RecordsIn, stats.RecordsOut, stats.Transactions, stats.Elapsed.Round(1e6), rate, resumed)
	if stats.Duplicates > 0 {
		fmt.Fprintf(os.Stderr, "%d duplicate records skipped (message id seen within %v)\n", stats.Duplicates, c.Duration("dedup-window"))
	}
	if stats.Late > 0 {
		fmt.Fprintf(os.Stderr, "%d records were more than --allowed-lateness behind the watermark: sent to --late-output %s\n", stats.Late, c.String("late-output"))
	}
	if stats.DeadLettered > 0 {
		fmt.Fprintf(os.Stderr, "%d records went to the dead-letter queue (%d entries now): helios-wasm dlq list --name %s --data-dir %s\n",
			stats.DeadLettered, p.DeadLetterQueue().Size(), name, c.String("data-dir"))
	}
	return explainRunError(c, err)
}

// explainRunError adds the flags that resolve a refused input or output.
func explainRunError(c *cli.Context, err error) error {
	switch {
	case errors.Is(err, runtime.ErrDLQFull):
		return fmt.Errorf("%w (--dlq-max %d)", err, c.Int("dlq-max"))
	case errors.Is(err, runtime.ErrInputReplaced):
		return fmt.Errorf("%w\nrerun with --from-start to process the new file from its start under the same --name, or choose a new --name", err)
	case errors.Is(err, runtime.ErrRecordTooLarge):
		return fmt.Errorf("%w\n(the limit is --max-record-bytes; without --no-dlq such records are dead-lettered instead)", err)
	}
	return err
}

// defaultPipelineName derives a stable name from the input and output, so
// that rerunning the same command resumes the same pipeline.
func defaultPipelineName(input, output string) string {
	h := fnv.New64a()
	h.Write([]byte(input + "\x00" + output))
	return "p-" + hex.EncodeToString(h.Sum(nil))[:12]
}
