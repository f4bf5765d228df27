package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

func dlqCommand() *cli.Command {
	name := &cli.StringFlag{Name: "name", Usage: "pipeline name (default: the only pipeline in the data directory)"}
	return &cli.Command{
		Name:  "dlq",
		Usage: "inspect and manage a pipeline's dead-letter queue",
		Description: "Records the operator failed, records that made the plugin trap, and input lines that are not JSON are kept\n" +
			"with the error, a stable code, their source position and the plugin version.\n\n" +
			"Examples:\n  helios-wasm dlq list --name orders\n  helios-wasm dlq show 3\n  helios-wasm dlq export --format jsonl > dead.jsonl\n  helios-wasm dlq purge --all",
		Subcommands: []*cli.Command{
			{
				Name: "list", Usage: "list the entries, oldest first", Flags: []cli.Flag{dataDirFlag(), name},
				Action: func(c *cli.Context) error {
					entries, err := dlqEntries(c)
					if err != nil {
						return err
					}
					w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "ID\tCODE\tWHERE\tLAST FAILURE\tERROR")
					for _, e := range entries {
						fmt.Fprintf(w, "%d\t%d %s\t%s\t%s\t%s\n", e.ID, e.Code, codeName(e.Code), where(e), e.LastFailure.Format(time.RFC3339), oneLine(e.Error, 100))
					}
					w.Flush()
					fmt.Fprintf(os.Stderr, "%d entries\n", len(entries))
					return nil
				},
			},
			{
				Name: "show", Usage: "show one entry in full", ArgsUsage: "ID", Flags: []cli.Flag{dataDirFlag(), name},
				Action: func(c *cli.Context) error {
					if err := requireArgs(c, 1, "one entry ID"); err != nil {
						return err
					}
					id, err := strconv.ParseUint(c.Args().First(), 10, 64)
					if err != nil {
						return usagef("entry ID %q: %v", c.Args().First(), err)
					}
					entries, err := dlqEntries(c)
					if err != nil {
						return err
					}
					for _, e := range entries {
						if e.ID == id {
							enc := json.NewEncoder(os.Stdout)
							enc.SetIndent("", "  ")
							return enc.Encode(view(e))
						}
					}
					return usagef("entry %d: %v", id, runtime.ErrNoEntry)
				},
			},
			{
				Name: "export", Usage: "write every entry as one JSON object per line", Flags: []cli.Flag{dataDirFlag(), name,
					&cli.StringFlag{Name: "format", Value: "jsonl", Usage: "jsonl (the only format)"}},
				Action: func(c *cli.Context) error {
					if c.String("format") != "jsonl" {
						return usagef("--format %q: only jsonl is supported", c.String("format"))
					}
					entries, err := dlqEntries(c)
					if err != nil {
						return err
					}
					w := bufio.NewWriter(os.Stdout)
					enc := json.NewEncoder(w)
					for _, e := range entries {
						if err := enc.Encode(view(e)); err != nil {
							return err
						}
					}
					return w.Flush()
				},
			},
			{
				Name:  "retry",
				Usage: "reprocess entries through the pipeline's plugin (or --plugin) into its output, exactly once",
				Description: "Each entry is processed again with its original message id. One that succeeds writes its outputs to the\n" +
					"pipeline's output and leaves the queue, in one transaction; one that fails again stays, with its retry count,\n" +
					"error and plugin updated.\n\nExample:\n  helios-wasm dlq retry --all --plugin build/plugins/go/fixed.wasm",
				Flags: append([]cli.Flag{dataDirFlag(), name,
					&cli.Uint64SliceFlag{Name: "id", Usage: "entry to retry (repeatable)"}, &cli.BoolFlag{Name: "all", Usage: "retry every entry"},
					&cli.StringFlag{Name: "plugin", Usage: "plugin to use (default: the pipeline's last plugin)"},
					&cli.StringSliceFlag{Name: "config", Usage: "operator config key=value (default: the pipeline's)"},
				}, slices.Concat(engineFlags(), kafkaFlags())...),
				Action: dlqRetry,
			},
			{
				Name: "purge", Usage: "delete entries (--id ID, repeatable, or --all)", Flags: []cli.Flag{dataDirFlag(), name,
					&cli.Uint64SliceFlag{Name: "id", Usage: "entry to delete (repeatable)"}, &cli.BoolFlag{Name: "all", Usage: "delete every entry"}},
				Action: func(c *cli.Context) error {
					ids := c.Uint64Slice("id")
					if len(ids) == 0 && !c.Bool("all") || len(ids) > 0 && c.Bool("all") {
						return usagef("dlq purge: give --id ID (repeatable) or --all")
					}
					err := withDLQ(c, func(q *runtime.DeadLetterQueue, pipeline string, db *storage.DB) error {
						ctx := context.Background()
						n, err := q.Purge(ctx, ids)
						if err != nil {
							return usageError{err}
						}
						fmt.Fprintf(os.Stderr, "purged %d entries; %d left\n", n, q.Size())
						return nil
					})
					if !errors.Is(err, storage.ErrLocked) {
						return err
					}
					// A running pipeline purges in a transaction of its own.
					name, err := runningPipeline(c)
					if err != nil {
						return err
					}
					var res admin.DLQPurgeResult
					if err := postData(c, "/v1/dlq/"+url.PathEscape(name)+"/purge", admin.DLQRequest{IDs: ids}, &res); err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "purged %d entries through the running pipeline %s; %d left\n", res.Purged, name, res.Left)
					return nil
				},
			},
		},
	}
}

// dlqEntries reads the chosen pipeline's entries, from the data directory
// or, while a running process holds it, through that process.
func dlqEntries(c *cli.Context) ([]runtime.DLQEntry, error) {
	var entries []runtime.DLQEntry
	err := withDLQFrom(c, openDBReadOnly, func(q *runtime.DeadLetterQueue, _ string, _ *storage.DB) error {
		return q.List(func(e runtime.DLQEntry) error { entries = append(entries, e); return nil })
	})
	if !errors.Is(err, storage.ErrLocked) {
		return entries, err
	}
	name, err := runningPipeline(c)
	if err != nil {
		return nil, err
	}
	return entries, getData(c, "/v1/dlq/"+url.PathEscape(name), &entries)
}

// runningPipeline names the chosen pipeline of the process holding the data
// directory: --name, or the only one it runs.
func runningPipeline(c *cli.Context) (string, error) {
	if name := c.String("name"); name != "" {
		return name, nil
	}
	var all []runtime.Status
	if err := getData(c, "/v1/pipelines", &all); err != nil {
		return "", err
	}
	if len(all) != 1 {
		return "", usagef("%d pipelines run there: choose one with --name", len(all))
	}
	return all[0].Name, nil
}

// postData POSTs in as JSON to the process holding the data directory and
// decodes its answer into out. A refusal (4xx) is a usage error.
func postData(c *cli.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := dataClient(c).Post("http://data"+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("data directory in use, and its process does not answer on its socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode < 500 {
			return usagef("%s", e.Error)
		}
		return errors.New(e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// getData GETs JSON from the process holding the data directory.
func getData(c *cli.Context, path string, out any) error {
	body, err := dataGet(c, path)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(body).Decode(out)
}

// dataGet GETs path from the process holding the data directory and returns
// the body of a successful answer; an error answer becomes a usage error.
func dataGet(c *cli.Context, path string) (io.ReadCloser, error) {
	resp, err := dataClient(c).Get("http://data" + path)
	if err != nil {
		return nil, fmt.Errorf("data directory in use, and its process does not answer on its socket: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return nil, usagef("%s", e.Error)
	}
	return resp.Body, nil
}

// withDLQ opens the data directory and the dead-letter queue of the chosen
// pipeline.
func withDLQ(c *cli.Context, fn func(q *runtime.DeadLetterQueue, pipeline string, db *storage.DB) error) error {
	return withDLQFrom(c, openDB, fn)
}

// withDLQFrom is withDLQ with the data directory opened by open.
func withDLQFrom(c *cli.Context, open func(*cli.Context) (*storage.DB, error), fn func(q *runtime.DeadLetterQueue, pipeline string, db *storage.DB) error) error {
	db, err := open(c)
	if err != nil {
		return err
	}
	defer db.Close()
	name, err := pipelineName(c, db)
	if err != nil {
		return err
	}
	q, err := runtime.NewDeadLetterQueue(db, name)
	if err != nil {
		return err
	}
	return fn(q, name, db)
}

// pipelineName is the pipeline of db that --name names (it must exist),
// or the only one there.
func pipelineName(c *cli.Context, db *storage.DB) (string, error) {
	name := c.String("name")
	if name == "" {
		names, err := db.Pipelines()
		if err != nil {
			return "", err
		}
		if len(names) != 1 {
			return "", usagef("%d pipelines in %s (%v): choose one with --name", len(names), db.Dir(), names)
		}
		return names[0], nil
	}
	if _, err := runtime.LoadPipelineInfo(db, name); err != nil {
		return "", usageError{err}
	}
	return name, nil
}

// entryView is a DLQ entry for people: the value as text when it is text.
type entryView struct {
	runtime.DLQEntry
	Value       string `json:"value,omitempty"`
	ValueBase64 string `json:"value_base64,omitempty"`
	Key         string `json:"key,omitempty"`
	CodeName    string `json:"code_name"`
}

func view(e runtime.DLQEntry) entryView {
	v := entryView{DLQEntry: e, CodeName: codeName(e.Code), Key: string(e.Key)}
	if utf8.Valid(e.Value) {
		v.Value = string(e.Value)
	} else {
		v.ValueBase64 = base64.StdEncoding.EncodeToString(e.Value)
	}
	return v
}

func codeName(code uint32) string {
	switch code {
	case abi.FailGeneric:
		return "GENERIC"
	case abi.FailRetryable:
		return "RETRYABLE"
	case abi.FailInvalidInput:
		return "INVALID_INPUT"
	case abi.FailTrap:
		return "TRAP"
	case abi.FailDeadline:
		return "DEADLINE"
	case abi.FailMemoryLimit:
		return "MEMORY_LIMIT"
	case abi.FailBadOutput:
		return "BAD_OUTPUT"
	case abi.FailBatchFailed:
		return "BATCH_FAILED"
	case abi.FailOutputLimit:
		return "OUTPUT_LIMIT"
	case abi.FailStateLimit:
		return "STATE_LIMIT"
	case abi.FailMalformedInput:
		return "MALFORMED_INPUT"
	case abi.FailRecordTooLarge:
		return "RECORD_TOO_LARGE"
	case abi.FailSchema:
		return "SCHEMA"
	case abi.FailEventTime:
		return "EVENT_TIME"
	case abi.FailLate:
		return "LATE"
	case abi.FailSinkRejected:
		return "SINK_REJECTED"
	}
	if code >= abi.FailUserBase {
		return "USER"
	}
	return "UNKNOWN"
}

func where(e runtime.DLQEntry) string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d", e.Source, e.Line)
	}
	return fmt.Sprintf("%s p%d@%d", e.Source, e.Partition, e.Offset)
}

func oneLine(s string, n int) string {
	b := []rune(s)
	for i, r := range b {
		if r == '\n' {
			b[i] = ' '
		}
	}
	if len(b) > n {
		return string(b[:n-1]) + "…"
	}
	return string(b)
}

func dlqRetry(c *cli.Context) error {
	ids := c.Uint64Slice("id")
	if len(ids) == 0 && !c.Bool("all") || len(ids) > 0 && c.Bool("all") {
		return usagef("dlq retry: give --id ID (repeatable) or --all")
	}
	err := withDLQ(c, func(_ *runtime.DeadLetterQueue, pipeline string, db *storage.DB) error {
		ctx := context.Background()
		info, err := runtime.LoadPipelineInfo(db, pipeline)
		if err != nil {
			return usageError{err}
		}
		engine, err := newEngine(ctx, c)
		if err != nil {
			return usageError{err}
		}
		defer engine.Close(ctx)
		// The version the pipeline ran last (a swap included), kept in the
		// data directory; the file it started from may be another by now.
		var plugin *host.Plugin
		var cfg []abi.Header
		found := false
		if !c.IsSet("plugin") {
			if plugin, cfg, found, err = runtime.LatestPlugin(ctx, db, engine, pipeline); err != nil {
				return err
			}
		}
		if !found {
			pluginPath, cfgPairs := info.Plugin, info.Config
			if c.IsSet("plugin") {
				pluginPath = c.String("plugin")
			}
			if cfg, err = parseConfig(cfgPairs); err != nil {
				return err
			}
			if plugin, err = loadPlugin(ctx, engine, pluginPath); err != nil {
				return err
			}
		}
		if c.IsSet("config") {
			if cfg, err = parseConfig(c.StringSlice("config")); err != nil {
				return err
			}
		}
		ep := runtime.Endpoints{DB: db, Kafka: kafkaConfig(c)}
		src, err := runtime.ParseSource(ctx, info.Input, ep)
		parts := uint32(1)
		if err == nil {
			parts = src.Partitions()
		}
		sink, err := runtime.ParseSink(ctx, info.Output, ep, parts)
		if err != nil {
			return sourceError(err)
		}
		defer sink.Close()
		st, err := runtime.RetryDeadLetters(ctx, runtime.RetryConfig{Name: pipeline, DB: db, Plugin: plugin, PluginConfig: cfg, Sink: sink, IDs: ids,
			Windowed: info.Window != ""})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "retried %d entries with %s: %d succeeded (%d outputs to %s), %d still failing\n",
			st.Retried, plugin.Name(), st.Succeeded, st.Outputs, sink.Identity(), st.Retried-st.Succeeded)
		printRetrySkips(st)
		return nil
	})
	if !errors.Is(err, storage.ErrLocked) {
		return err
	}
	// A running pipeline retries with its current plugin and config, in a
	// transaction of its own.
	name, err := runningPipeline(c)
	if err != nil {
		return err
	}
	if c.IsSet("plugin") || c.IsSet("config") {
		return usagef("pipeline %s runs in another process, and a retry there uses its current plugin and config: "+
			"drop --plugin/--config, swap the plugin first (helios-wasm swap), or stop the pipeline", name)
	}
	var st runtime.RetryStats
	if err := postData(c, "/v1/dlq/"+url.PathEscape(name)+"/retry", admin.DLQRequest{IDs: ids}, &st); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "retried %d entries through the running pipeline %s: %d succeeded (%d outputs), %d still failing\n",
		st.Retried, name, st.Succeeded, st.Outputs, st.Retried-st.Succeeded)
	printRetrySkips(st)
	return nil
}

// printRetrySkips says which entries a retry left alone, and why.
func printRetrySkips(st runtime.RetryStats) {
	if st.Skipped > 0 {
		fmt.Fprintf(os.Stderr, "skipped %d malformed-input or too-large entries: no plugin can fix them; correct the data and produce it again, or purge them\n", st.Skipped)
	}
	if st.InWindows > 0 {
		fmt.Fprintf(os.Stderr, "skipped %d records of windows: a retry cannot put a record back into its window, whose result may be out already; "+
			"produce them to the input again (a closed window's are late), or purge them\n", st.InWindows)
	}
}
