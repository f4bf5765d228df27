package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// serveConfig is the file given to `serve --config`, YAML or JSON. The
// process-wide fields can also come from serve's flags and their HELIOS_
// environment variables: a flag wins over its environment variable, which
// wins over the file, which wins over the default. README.md lists every
// field with its default.
type serveConfig struct {
	DataDir string `json:"data_dir"` // default ./helios-data
	// Admin is the admin API's address: absent or null: 127.0.0.1:8080;
	// "": no admin API.
	Admin             *string  `json:"admin"`
	AdminToken        string   `json:"admin_token"`         // default: the data directory's admin.token
	AdminAllowedHosts []string `json:"admin_allowed_hosts"` // like run --admin-allowed-hosts
	KeepVersions      int      `json:"keep_versions"`       // like run --keep-versions; default 10
	// As run's --transaction-timeout (default 30s; a duration string or a
	// number of seconds), --checkpoint-every (10000), --checkpoints-keep
	// (10) and --max-queue-depth (8), for every pipeline.
	TransactionTimeout *fileDuration `json:"transaction_timeout"`
	CheckpointEvery    int64         `json:"checkpoint_every"`
	CheckpointsKeep    int           `json:"checkpoints_keep"`
	MaxQueueDepth      int           `json:"max_queue_depth"`
	Pipelines          []servedSpec  `json:"pipelines"`

	commit commitSettings // resolved from flags, environment, file and defaults
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
	// As run's event-time flags: event_time (default none: off),
	// event_time_format (rfc3339), watermark_delay (5s), idle_timeout (0:
	// never idle), allowed_lateness (5m), allowed_lateness_for (a list of
	// PARTITION=DURATION), late_output (dlq), window (none) and emit
	// (final). Durations are Go durations ("30s", "10m").
	EventTime          string   `json:"event_time,omitempty"`
	EventTimeFormat    string   `json:"event_time_format,omitempty"`
	WatermarkDelay     string   `json:"watermark_delay,omitempty"`
	IdleTimeout        string   `json:"idle_timeout,omitempty"`
	AllowedLateness    string   `json:"allowed_lateness,omitempty"`
	AllowedLatenessFor []string `json:"allowed_lateness_for,omitempty"`
	LateOutput         string   `json:"late_output,omitempty"`
	Window             string   `json:"window,omitempty"`
	Emit               string   `json:"emit,omitempty"`
	// As run's --at-least-once: accept stdin or stdout ("-"). Default false.
	AtLeastOnce bool `json:"at_least_once,omitempty"`
}

// eventTime validates the pipeline's event-time fields and returns its
// EventTime (nil: off); where names a field in messages.
func (p servedSpec) eventTime(where func(field string) string) (*runtime.EventTimeConfig, error) {
	s := eventTimeSettings{source: p.EventTime, format: p.EventTimeFormat, latenessFor: p.AllowedLatenessFor,
		delay: defaultWatermarkDelay, lateness: defaultAllowedLateness, lateOutput: p.LateOutput, window: p.Window, emit: p.Emit}
	if s.lateOutput == "" {
		s.lateOutput = defaultLateOutput
	}
	var errs []error
	for _, d := range []struct {
		field, v string
		dst      *time.Duration
	}{{"watermark_delay", p.WatermarkDelay, &s.delay}, {"idle_timeout", p.IdleTimeout, &s.idle}, {"allowed_lateness", p.AllowedLateness, &s.lateness}} {
		if d.v == "" {
			continue
		}
		s.setWithoutEvent = append(s.setWithoutEvent, where(d.field))
		v, err := time.ParseDuration(d.v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want a duration such as 30s or 10m", where(d.field), d.v))
			continue
		}
		*d.dst = v
	}
	for _, f := range []struct{ field, v string }{{"event_time_format", p.EventTimeFormat}, {"late_output", p.LateOutput}, {"window", p.Window}, {"emit", p.Emit}} {
		if f.v != "" {
			s.setWithoutEvent = append(s.setWithoutEvent, where(f.field))
		}
	}
	if len(p.AllowedLatenessFor) > 0 {
		s.setWithoutEvent = append(s.setWithoutEvent, where("allowed_lateness_for"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s.config(func(setting string) string { return where(strings.ReplaceAll(setting, "-", "_")) })
}

// fileDuration is a duration in the config file: "45s", "2m" or a number
// of seconds.
type fileDuration struct{ d time.Duration }

// UnmarshalYAML reads the scalar with its position for the error.
func (f *fileDuration) UnmarshalYAML(n ast.Node) error {
	s := strings.Trim(n.String(), `"'`)
	d, err := parseSeconds(s)
	if err != nil {
		return &posError{tok: n.GetToken(), msg: "transaction_timeout " + err.Error()}
	}
	f.d = d
	return nil
}

// posError is an error at a place in the file.
type posError struct {
	tok *token.Token
	msg string
}

func (e *posError) Error() string          { return at(e.tok) + ": " + e.msg }
func (e *posError) GetToken() *token.Token { return e.tok }
func (e *posError) GetMessage() string     { return e.msg }

func at(t *token.Token) string {
	if t == nil || t.Position == nil {
		return "?"
	}
	return fmt.Sprintf("%d:%d", t.Position.Line, t.Position.Column)
}

// serveConfigFormat names the file's format from its extension; other
// extensions are read as YAML, of which JSON is a subset.
func serveConfigFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return "JSON"
	default:
		return "YAML"
	}
}

// decodeServeConfig parses b strictly (unknown fields are errors) and
// returns errors as FILE:LINE:COL: message.
func decodeServeConfig(path string, b []byte) (*serveConfig, *ast.File, error) {
	format := serveConfigFormat(path)
	if format == "JSON" {
		// The YAML parser accepts more than JSON (comments, trailing
		// commas): hold a .json file to JSON's syntax.
		var v any
		var se *json.SyntaxError
		if err := json.Unmarshal(b, &v); errors.As(err, &se) {
			line, col := lineCol(b, se.Offset)
			return nil, nil, fmt.Errorf("%s:%d:%d: %v (JSON)", path, line, col, se)
		}
	}
	f, err := parser.ParseBytes(b, 0)
	if err == nil {
		var cfg serveConfig
		if err = yaml.UnmarshalWithOptions(b, &cfg, yaml.Strict()); err == nil {
			return &cfg, f, nil
		}
	}
	var pe interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &pe) {
		return nil, nil, fmt.Errorf("%s:%s: %s (%s)", path, at(pe.GetToken()), pe.GetMessage(), format)
	}
	return nil, nil, fmt.Errorf("%s: %v (%s)", path, err, format)
}

// lineCol converts a byte offset to a 1-based line and column.
func lineCol(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	return line, int(off) - (bytes.LastIndexByte(before, '\n') + 1)
}

// nodeAt is where the value at YAML path p is, as FILE:LINE:COL (FILE alone
// when the path is absent).
func nodeAt(path string, f *ast.File, p string) string {
	yp, err := yaml.PathString(p)
	if err != nil || f == nil {
		return path
	}
	n, err := yp.FilterFile(f)
	if err != nil || n == nil {
		return path
	}
	return path + ":" + at(n.GetToken())
}

// loadServeConfig reads the file, applies the flags and environment
// variables that override it, defaults, and validates everything once,
// reporting every problem with where it is.
func loadServeConfig(c *cli.Context, path string) (*serveConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("serve: %v", err)
	}
	cfg, file, err := decodeServeConfig(path, b)
	if err != nil {
		return nil, usagef("serve: %v", err)
	}
	cfg.applyFlags(c)
	var errs []error
	if cfg.KeepVersions < 2 {
		errs = append(errs, fmt.Errorf("%s: keep_versions %d: at least 2 (the running version and the rollback target)",
			origin(c, "keep-versions", path, file, "$.keep_versions"), cfg.KeepVersions))
	}
	fileField := map[string]string{"transaction-timeout": "transaction_timeout", "checkpoint-every": "checkpoint_every",
		"checkpoints-keep": "checkpoints_keep", "max-queue-depth": "max_queue_depth"}
	if err := cfg.commit.validate(func(flag string) string {
		return origin(c, flag, path, file, "$."+fileField[flag]) + ": " + fileField[flag]
	}); err != nil {
		errs = append(errs, err)
	}
	if len(cfg.Pipelines) == 0 {
		errs = append(errs, fmt.Errorf("%s: no pipelines", nodeAt(path, file, "$.pipelines")))
	}
	seen := map[string]bool{}
	for i, p := range cfg.Pipelines {
		where := fmt.Sprintf("%s: pipelines[%d]", nodeAt(path, file, fmt.Sprintf("$.pipelines[%d]", i)), i)
		if err := storage.ValidateName("pipeline", p.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("%s: pipeline %q appears twice", where, p.Name))
		}
		seen[p.Name] = true
		for _, req := range []struct{ field, v string }{{"plugin", p.Plugin}, {"input", p.Input}, {"output", p.Output}} {
			if req.v == "" {
				errs = append(errs, fmt.Errorf("%s (%s): %s is required", where, p.Name, req.field))
			}
		}
		if p.MaxRecordBytes < 0 {
			errs = append(errs, fmt.Errorf("%s (%s): max_record_bytes %d is negative", where, p.Name, p.MaxRecordBytes))
		}
		if _, err := parseConfig(p.Config); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", where, p.Name, err))
		}
		if _, err := p.eventTime(func(field string) string { return fmt.Sprintf("%s (%s): %s", where, p.Name, field) }); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, usageError{fmt.Errorf("serve: %w", errors.Join(errs...))}
	}
	return cfg, nil
}

// origin names where a setting came from: the flag (or its environment
// variable) when set, else its place in the file.
func origin(c *cli.Context, flag, path string, file *ast.File, yamlPath string) string {
	if c.IsSet(flag) {
		return flagSource(c, flag)
	}
	return nodeAt(path, file, yamlPath)
}

// applyFlags resolves the process-wide settings: a flag or its environment
// variable (c.IsSet covers both; urfave/cli prefers the flag) over the
// file, the file over the flag's default.
func (cfg *serveConfig) applyFlags(c *cli.Context) {
	if c.IsSet("data-dir") || cfg.DataDir == "" {
		cfg.DataDir = c.String("data-dir")
	}
	if c.IsSet("admin") || cfg.Admin == nil {
		addr := c.String("admin")
		cfg.Admin = &addr
	}
	if c.IsSet("admin-token") || cfg.AdminToken == "" {
		cfg.AdminToken = c.String("admin-token")
	}
	if c.IsSet("admin-allowed-hosts") || cfg.AdminAllowedHosts == nil {
		cfg.AdminAllowedHosts = c.StringSlice("admin-allowed-hosts")
	}
	if c.IsSet("keep-versions") || cfg.KeepVersions == 0 {
		cfg.KeepVersions = c.Int("keep-versions")
	}
	cfg.commit = commitFromFlags(c)
	if !c.IsSet("transaction-timeout") && cfg.TransactionTimeout != nil {
		cfg.commit.txnTimeout = cfg.TransactionTimeout.d
	}
	if !c.IsSet("checkpoint-every") && cfg.CheckpointEvery != 0 {
		cfg.commit.checkpointEvery = cfg.CheckpointEvery
	}
	if !c.IsSet("checkpoints-keep") && cfg.CheckpointsKeep != 0 {
		cfg.commit.checkpointsKeep = cfg.CheckpointsKeep
	}
	if !c.IsSet("max-queue-depth") && cfg.MaxQueueDepth != 0 {
		cfg.commit.maxQueueDepth = cfg.MaxQueueDepth
	}
}
