package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/runtime"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "reprocess a range of the embedded log through any plugin into any output, exactly once",
		Description: "The range is read as a pipeline of its own (named after the range and output), so the live pipeline's\n" +
			"offsets never move, a replay interrupted at any point resumes when rerun, and a finished replay outputs\n" +
			"nothing twice. Input that cannot be re-read (stdin) is kept in an archive of its last --archive-max records\n" +
			"by the pipeline that read it: replay it with --input archive:PIPELINE.\n\n" +
			"Example:\n  helios-wasm replay --input log:events --partition 0 --from 1000 --to 2000 \\\n" +
			"      --plugin build/plugins/go/uppercase.wasm --output file:replayed.jsonl",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Required: true, Usage: "log:TOPIC or archive:PIPELINE"},
			&cli.BoolFlag{Name: "at-least-once", Usage: "accept stdout (-) as output, which cannot take outputs back after a crash"},
			&cli.IntFlag{Name: "partition", Value: -1, Usage: "only this partition (-1: all)"},
			&cli.Uint64Flag{Name: "from", Usage: "first offset"},
			&cli.Uint64Flag{Name: "to", Usage: "end offset, exclusive (default: the end of the log at start)"},
			pluginFlag(),
			outputFlag(),
			configFlag(),
			&cli.StringFlag{Name: "name", Usage: "the replay's pipeline name (default: derived from the range and output)"},
			batchSizeFlag(),
			dataDirFlag(),
		}, slices.Concat(engineFlags(), kafkaFlags())...),
		Action: replayAction,
	}
}

func replayAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("replay takes no arguments, got %q", c.Args().Slice())
	}
	topic, ok := strings.CutPrefix(c.String("input"), "log:")
	if !ok {
		name, ok := strings.CutPrefix(c.String("input"), "archive:")
		if !ok {
			return usagef("--input %q: want log:TOPIC or archive:PIPELINE", c.String("input"))
		}
		topic = runtime.ArchiveTopic(name)
	}
	cfgPairs, err := parseConfig(c.StringSlice("config"))
	if err != nil {
		return err
	}
	ctx := context.Background()
	env, err := openRunEnv(ctx, c, c.String("plugin"), 0)
	if err != nil {
		return err
	}
	defer env.close(ctx)
	plugin, db := env.plugin, env.db
	if plugin.Info().WindowClose {
		return usagef("replay: %s is a window operator (it exports helios_window_close), and a replay runs without event time "+
			"or windows: its every record would fail; run it over the topic with `run --input log:%s --event-time ... --window ...` "+
			"under a new --name instead", plugin.Name(), topic)
	}
	src, err := runtime.NewLogRangeSource(db, topic, c.Int("partition"), c.Uint64("from"), c.Uint64("to"))
	if err != nil {
		return usageError{err}
	}
	sink, err := runtime.ParseSink(ctx, c.String("output"), runtime.Endpoints{DB: db, Kafka: kafkaConfig(c)}, src.Partitions())
	if err != nil {
		return sourceError(err)
	}
	defer sink.Close()
	name := c.String("name")
	if name == "" {
		name = "replay-" + defaultPipelineName(src.Identity(), sink.Identity())[2:]
	}
	p, err := runtime.New(runtime.Config{Name: name, DB: db, Plugin: plugin, PluginConfig: cfgPairs, Source: src, Sink: sink, BatchSize: c.Int("batch-size"),
		AtLeastOnce: c.Bool("at-least-once")})
	if err != nil {
		return usageError{err}
	}
	stats, err := p.Run(ctx)
	fmt.Fprintf(os.Stderr, "replay %s of %s: %d records in, %d out, %d dead-lettered in %v\n", name, src.Identity(), stats.RecordsIn, stats.RecordsOut,
		stats.DeadLettered, stats.Elapsed.Round(1e6))
	return err
}
