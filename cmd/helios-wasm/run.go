package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"runtime/debug"
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
			"Inputs:  file:PATH (JSON Lines, one record per line), log:TOPIC (embedded log), - (stdin, at-least-once)\n" +
			"Outputs: file:PATH (JSON Lines, one line per output value), log:TOPIC, - (stdout, at-least-once)\n\n" +
			"Example:\n" +
			"  helios-wasm run --plugin build/plugins/go/filter.wasm --config field=user --config equals=u1 \\\n" +
			"      --input file:events.jsonl --output file:u1.jsonl",
		Flags: append([]cli.Flag{
			pluginFlag(),
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Required: true, Usage: "source: file:PATH, log:TOPIC or -"},
			outputFlag(),
			dataDirFlag(),
			&cli.StringFlag{Name: "name", Usage: "pipeline name (offsets and state live under it); default: derived from --input and --output"},
			configFlag(),
			batchSizeFlag(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep tailing the input instead of stopping at its end"},
			&cli.BoolFlag{Name: "watch", Usage: "hot-swap the plugin when its file changes (validated like any swap)"},
			&cli.IntFlag{Name: "dlq-max", Value: 10_000, Usage: "dead-letter queue bound; when full the pipeline pauses (it never drops a record)"},
			&cli.BoolFlag{Name: "no-dlq", Usage: "stop at the first failed, poison or malformed record instead of dead-lettering it"},
			&cli.StringFlag{Name: "id-field", Usage: "take each record's message id from this JSON field and skip duplicates within --dedup-window"},
			&cli.StringFlag{Name: "id-header", Usage: "take each record's message id from this header and skip duplicates within --dedup-window"},
			&cli.BoolFlag{Name: "dedup", Usage: "skip duplicate message ids (implied by --id-field/--id-header; useful on log: inputs whose producer set ids)"},
			&cli.DurationFlag{Name: "dedup-window", Value: 5 * time.Minute, Usage: "how long a message id is remembered"},
			&cli.StringFlag{Name: "admin", Value: "127.0.0.1:8080", Usage: "serve the admin API, /metrics, /healthz and /readyz on this address (empty: off; the default is skipped with a warning if taken)", EnvVars: []string{"HELIOS_ADMIN"}},
			&cli.StringFlag{Name: "admin-token", Usage: "bearer token for the admin API (required off loopback)", EnvVars: []string{"HELIOS_ADMIN_TOKEN"}},
			&cli.Int64Flag{Name: "max-inflight-bytes", Value: 64 << 20, Usage: "bytes read but not yet committed; reading waits beyond it (capped at a quarter of --memory-limit)"},
			&cli.IntFlag{Name: "memory-limit", Value: 256, Usage: "process memory budget in MiB: sizes the Go heap limit, Pebble's memtables and the in-flight bytes"},
			&cli.IntFlag{Name: "max-queue-depth", Value: 8, Usage: "processed batches waiting for the committer"},
			&cli.IntFlag{Name: "batch-min", Usage: "dynamic batch size lower bound (default: --batch-size, i.e. fixed batches)"},
			&cli.IntFlag{Name: "batch-max", Usage: "dynamic batch size upper bound (default: --batch-size)"},
			&cli.DurationFlag{Name: "batch-target", Value: 100 * time.Millisecond, Usage: "operator time per batch that dynamic sizing aims at"},
			&cli.IntFlag{Name: "max-retries", Usage: "retry a record the operator marks retryable this many times (backoff from 100ms) before dead-lettering it"},
			&cli.IntFlag{Name: "archive-max", Value: 100_000, Usage: "for stdin input: keep the last N records for `helios-wasm replay --input archive:NAME` (0: none)"},
		}, engineFlags()...),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("run takes no arguments, got %q (see --help)", c.Args().Slice())
	}
	if c.Int("batch-size") < 1 {
		return usagef("--batch-size must be at least 1")
	}
	cfgPairs, err := parseConfig(c.StringSlice("config"))
	if err != nil {
		return err
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
	src, err := runtime.ParseSource(c.String("input"), db)
	if err != nil {
		return usageError{err}
	}
	sink, err := runtime.ParseSink(c.String("output"), db, src.Partitions())
	if err != nil {
		return usageError{err}
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
	reg, metrics := newMetrics()
	var adminSrv *admin.Server
	if addr := c.String("admin"); addr != "" {
		adminSrv, err = admin.Start(admin.Config{Addr: addr, Token: c.String("admin-token"), Gatherer: reg})
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
	p, err := runtime.New(runtime.Config{
		Name: name, DB: db, Plugin: plugin, PluginConfig: cfgPairs,
		Source: src, Sink: sink, BatchSize: c.Int("batch-size"), Follow: c.Bool("follow"),
		DeadLetter: runtime.DLQConfig{Max: c.Int("dlq-max")}, NoDeadLetter: c.Bool("no-dlq"), Dedup: dedup,
		ArchiveMax: archiveMax(c.Int("archive-max")), MaxRetries: c.Int("max-retries"), Metrics: metrics,
		Flow: runtime.FlowConfig{MaxInflightBytes: inflight, MaxQueueDepth: c.Int("max-queue-depth"),
			BatchMin: c.Int("batch-min"), BatchMax: c.Int("batch-max"), BatchTarget: c.Duration("batch-target")},
	})
	if err != nil {
		return usageError{err}
	}
	if err := runtime.SavePipelineInfo(db, runtime.PipelineInfo{Name: name, Input: c.String("input"), Output: c.String("output"),
		Plugin: c.String("plugin"), PluginHash: plugin.Hash(), Config: c.StringSlice("config")}); err != nil {
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
	m := p.Coordinator().Metrics()
	rate := 0.0
	if s := stats.Elapsed.Seconds(); s > 0 {
		rate = float64(stats.RecordsIn) / s
	}
	resumed := ""
	if stats.Resumed {
		resumed = " (resumed after the last commit)"
	}
	fmt.Fprintf(os.Stderr, "pipeline %s: %d records in, %d out, %d transactions in %v (%.0f records/s)%s\n",
		name, stats.RecordsIn, stats.RecordsOut, m.Committed, stats.Elapsed.Round(1e6), rate, resumed)
	if stats.Duplicates > 0 {
		fmt.Fprintf(os.Stderr, "%d duplicate records skipped (message id seen within %v)\n", stats.Duplicates, c.Duration("dedup-window"))
	}
	if stats.DeadLettered > 0 {
		fmt.Fprintf(os.Stderr, "%d records went to the dead-letter queue (%d entries now): helios-wasm dlq list --name %s --data-dir %s\n",
			stats.DeadLettered, p.DeadLetterQueue().Size(), name, c.String("data-dir"))
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

// archiveMax maps the flag (0: none) to runtime.Config.ArchiveMax (negative: none).
func archiveMax(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
