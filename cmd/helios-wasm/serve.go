package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// serveConfig is the file given to `serve --config`.
type serveConfig struct {
	DataDir string `json:"data_dir"` // default ./helios-data
	// Admin is the admin API's address: absent or null: 127.0.0.1:8080;
	// "": no admin API.
	Admin             *string      `json:"admin"`
	AdminToken        string       `json:"admin_token"`         // or HELIOS_ADMIN_TOKEN; default: the data directory's admin.token
	AdminAllowedHosts []string     `json:"admin_allowed_hosts"` // like run --admin-allowed-hosts
	KeepVersions      int          `json:"keep_versions"`       // like run --keep-versions; default 10
	Pipelines         []servedSpec `json:"pipelines"`
}

type servedSpec struct {
	Name      string   `json:"name"`
	Plugin    string   `json:"plugin"`
	Input     string   `json:"input"`
	Output    string   `json:"output"`
	Config    []string `json:"config,omitempty"` // key=value
	BatchSize int      `json:"batch_size,omitempty"`
	Follow    *bool    `json:"follow,omitempty"` // default true
	DLQMax    int      `json:"dlq_max,omitempty"`
	// As run's --final-line, --from-start and --max-record-bytes (default 8 MiB).
	FinalLine      bool `json:"final_line,omitempty"`
	FromStart      bool `json:"from_start,omitempty"`
	MaxRecordBytes int  `json:"max_record_bytes,omitempty"`
	// As run's --schema and --output-schema: SUBJECT[@VERSION]; default none.
	Schema       string `json:"schema,omitempty"`
	OutputSchema string `json:"output_schema,omitempty"`
}

func loadServeConfig(path string) (*serveConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("serve: %v", err)
	}
	var cfg serveConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, usagef("serve: %s: %v", path, err)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./helios-data"
	}
	if cfg.Admin == nil {
		addr := "127.0.0.1:8080"
		cfg.Admin = &addr
	}
	if cfg.KeepVersions == 0 {
		cfg.KeepVersions = defaultKeepVersions
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = os.Getenv("HELIOS_ADMIN_TOKEN")
	}
	var errs []error
	if cfg.KeepVersions < 2 {
		errs = append(errs, fmt.Errorf("keep_versions %d: at least 2 (the running version and the rollback target)", cfg.KeepVersions))
	}
	if len(cfg.Pipelines) == 0 {
		errs = append(errs, errors.New("no pipelines"))
	}
	seen := map[string]bool{}
	for i, p := range cfg.Pipelines {
		where := fmt.Sprintf("pipelines[%d]", i)
		if err := storage.ValidateName("pipeline", p.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("%s: pipeline %q appears twice", where, p.Name))
		}
		seen[p.Name] = true
		for field, v := range map[string]string{"plugin": p.Plugin, "input": p.Input, "output": p.Output} {
			if v == "" {
				errs = append(errs, fmt.Errorf("%s (%s): %s is required", where, p.Name, field))
			}
		}
		if p.MaxRecordBytes < 0 {
			errs = append(errs, fmt.Errorf("%s (%s): max_record_bytes %d is negative", where, p.Name, p.MaxRecordBytes))
		}
		if _, err := parseConfig(p.Config); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", where, p.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, usageError{fmt.Errorf("serve: %s: %w", path, errors.Join(errs...))}
	}
	return &cfg, nil
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run several pipelines in one process, sharing one data directory and one admin API",
		Description: "Each pipeline is named and can be swapped, rolled back, paused and resumed on its own through the admin API\n" +
			"(`helios-wasm plugin swap --pipeline NAME`, `helios-wasm status`). Pipelines follow their input by default.\n\n" +
			"Example pipelines.json:\n" +
			"  {\"data_dir\": \"./helios-data\", \"admin\": \"127.0.0.1:8080\", \"pipelines\": [\n" +
			"    {\"name\": \"purchases\", \"plugin\": \"build/plugins/go/filter.wasm\", \"config\": [\"field=action\", \"equals=buy\"],\n" +
			"     \"input\": \"log:events\", \"output\": \"log:purchases\"}]}\n\n" +
			"  helios-wasm serve --config pipelines.json",
		Flags:  append([]cli.Flag{&cli.StringFlag{Name: "config", Required: true, Usage: "pipelines `FILE` (JSON)"}}, engineFlags()...),
		Action: serveAction,
	}
}

func serveAction(c *cli.Context) error {
	cfg, err := loadServeConfig(c.String("config"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	engine, err := newEngine(ctx, c)
	if err != nil {
		return usageError{err}
	}
	defer engine.Close(ctx)
	db, err := storage.Open(cfg.DataDir, storage.Options{Logger: slog.Default(), LockWait: lockWait})
	if err != nil {
		return readOnlyHint(err)
	}
	defer db.Close()
	dataSrv, err := admin.ServeData(db)
	if err != nil {
		slog.Warn("cannot serve the data directory to other commands", "error", err)
	} else {
		defer dataSrv.Close(context.Background())
	}
	reg, metrics := newMetrics()
	var pipes []*runtime.Pipeline
	var sinks []runtime.Sink
	defer func() {
		for _, s := range sinks {
			s.Close()
		}
	}()
	for _, spec := range cfg.Pipelines {
		plugin, err := loadPlugin(ctx, engine, spec.Plugin)
		if err != nil {
			return fmt.Errorf("pipeline %s: %w", spec.Name, err)
		}
		src, err := runtime.ParseSource(ctx, spec.Input, runtime.Endpoints{DB: db})
		if err != nil {
			return usageError{fmt.Errorf("pipeline %s: %w", spec.Name, err)}
		}
		sink, err := runtime.ParseSink(spec.Output, db, src.Partitions())
		if err != nil {
			return usageError{fmt.Errorf("pipeline %s: %w", spec.Name, err)}
		}
		sinks = append(sinks, sink)
		pcfg, _ := parseConfig(spec.Config)
		follow := spec.Follow == nil || *spec.Follow
		readerSchema, outputSchema, err := pipelineSchemas(db, spec.Schema, spec.OutputSchema, "schema", "output_schema")
		if err != nil {
			return usageError{fmt.Errorf("pipeline %s: %w", spec.Name, err)}
		}
		p, err := runtime.New(runtime.Config{Name: spec.Name, DB: db, Plugin: plugin, PluginConfig: pcfg, Source: src, Sink: sink,
			BatchSize: spec.BatchSize, Follow: follow, DeadLetter: runtime.DLQConfig{Max: spec.DLQMax}, Metrics: metrics,
			FinalLine: spec.FinalLine, FromStart: spec.FromStart, MaxRecordBytes: spec.MaxRecordBytes, KeepVersions: cfg.KeepVersions,
			Schema: readerSchema, OutputSchema: outputSchema})
		if err != nil {
			return usageError{fmt.Errorf("pipeline %s: %w", spec.Name, err)}
		}
		if err := runtime.SavePipelineInfo(db, runtime.PipelineInfo{Name: spec.Name, Input: spec.Input, Output: spec.Output,
			Plugin: spec.Plugin, PluginHash: plugin.Hash(), Config: spec.Config}); err != nil {
			return err
		}
		pipes = append(pipes, p)
	}
	var srv *admin.Server
	if *cfg.Admin != "" {
		if srv, err = startAdmin(db, *cfg.Admin, cfg.AdminToken, cfg.AdminAllowedHosts, reg); err != nil {
			return usageError{err}
		}
		defer srv.Close(context.Background())
		slog.Info("admin API listening", "addr", "http://"+srv.Addr(), "endpoints", "/metrics /healthz /readyz /v1/pipelines")
	} else {
		slog.Info("admin API off (\"admin\": \"\")")
	}
	for _, p := range pipes {
		if srv != nil {
			srv.Register(p)
		}
		if dataSrv != nil {
			dataSrv.Register(p)
		}
	}

	defer onSignals(func() {
		for _, p := range pipes {
			p.Stop()
		}
	})()

	var wg sync.WaitGroup
	errs := make([]error, len(pipes))
	for i, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.Run(ctx)
			if errs[i] != nil {
				slog.Error("pipeline stopped", "pipeline", cfg.Pipelines[i].Name, "error", errs[i])
			}
		}()
	}
	go func() {
		for _, p := range pipes {
			select {
			case <-p.Ready():
			case <-ctx.Done():
				return
			}
		}
		if srv != nil {
			srv.SetReady(true)
		}
	}()
	wg.Wait()
	return errors.Join(errs...)
}
