package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run several pipelines in one process, sharing one data directory and one admin API",
		Description: "Each pipeline is named and can be swapped, rolled back, paused and resumed on its own through the admin API\n" +
			"(`helios-wasm plugin swap --pipeline NAME`, `helios-wasm status`). Pipelines follow their input by default.\n\n" +
			"The file is YAML or JSON. Process-wide settings come from a flag, else its HELIOS_ environment variable,\n" +
			"else the file, else the default.\n\n" +
			"Example pipelines.yaml:\n" +
			"  data_dir: ./helios-data\n" +
			"  admin: 127.0.0.1:8080\n" +
			"  pipelines:\n" +
			"    - name: purchases\n" +
			"      plugin: build/plugins/go/filter.wasm\n" +
			"      config: [field=action, equals=buy]\n" +
			"      input: log:events\n" +
			"      output: log:purchases\n\n" +
			"  helios-wasm serve --config pipelines.yaml",
		Flags: withEnv(append([]cli.Flag{
			&cli.StringFlag{Name: "config", Required: true, Usage: "pipelines `FILE`, YAML or JSON (see the README for its fields)"},
			dataDirFlag(),
			&cli.StringFlag{Name: "admin", Value: "127.0.0.1:8080", Usage: "admin API address (empty: off); overrides the file's admin"},
			&cli.StringFlag{Name: "admin-token", Usage: "bearer token of the admin API's mutating requests (default: the data directory's admin.token)"},
			&cli.StringSliceFlag{Name: "admin-allowed-hosts", Usage: "extra `HOST[:PORT]` values the admin API accepts in the Host header (repeatable)"},
			&cli.IntFlag{Name: "keep-versions", Value: runtime.DefaultKeepVersions, Usage: "plugin versions kept for rollback per pipeline"},
		}, slices.Concat(commitFlags(), engineFlags(), kafkaFlags())...)),
		Action:       serveAction,
		OnUsageError: onUsageError,
	}
}

func serveAction(c *cli.Context) error {
	cfg, err := loadServeConfig(c, c.String("config"))
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
		ep := runtime.Endpoints{DB: db, Kafka: kafkaConfig(c)}
		src, err := runtime.ParseSource(ctx, spec.Input, ep)
		if err != nil {
			return sourceError(fmt.Errorf("pipeline %s: %w", spec.Name, err))
		}
		sink, err := runtime.ParseSink(ctx, spec.Output, ep, src.Partitions())
		if err != nil {
			return sourceError(fmt.Errorf("pipeline %s: %w", spec.Name, err))
		}
		sinks = append(sinks, sink)
		pcfg, _ := parseConfig(spec.Config)
		follow := spec.Follow == nil || *spec.Follow
		readerSchema, outputSchema, err := pipelineSchemas(db, spec.Schema, spec.OutputSchema, "schema", "output_schema")
		if err != nil {
			return usageError{fmt.Errorf("pipeline %s: %w", spec.Name, err)}
		}
		eventTime, _ := spec.eventTime(func(field string) string { return field }) // validated by loadServeConfig
		rcfg := runtime.Config{Name: spec.Name, DB: db, Plugin: plugin, PluginConfig: pcfg, Source: src, Sink: sink, EventTime: eventTime,
			BatchSize: spec.BatchSize, Follow: follow, DeadLetterMax: spec.DLQMax, Metrics: metrics,
			FinalLine: spec.FinalLine, FromStart: spec.FromStart, MaxRecordBytes: spec.MaxRecordBytes, KeepVersions: cfg.KeepVersions,
			Schema: readerSchema, OutputSchema: outputSchema, AtLeastOnce: spec.AtLeastOnce}
		cfg.commit.apply(&rcfg)
		p, err := runtime.New(rcfg)
		if err != nil {
			return usageError{fmt.Errorf("pipeline %s: %w", spec.Name, err)}
		}
		if err := runtime.SavePipelineInfo(db, runtime.PipelineInfo{Name: spec.Name, Input: spec.Input, Output: spec.Output,
			Plugin: spec.Plugin, PluginHash: plugin.Hash(), Config: spec.Config, Window: windowSpec(eventTime)}); err != nil {
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
