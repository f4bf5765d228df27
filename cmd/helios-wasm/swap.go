package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/runtime"
)

func adminFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "admin", Value: "http://127.0.0.1:8080", Usage: "admin API of the running process", EnvVars: []string{"HELIOS_ADMIN_URL"}},
		&cli.StringFlag{Name: "token", Usage: "bearer token (default: the admin.token file in --data-dir)", EnvVars: []string{"HELIOS_ADMIN_TOKEN"}},
		dataDirFlag(),
		&cli.StringFlag{Name: "pipeline", Usage: "pipeline name (default: the only one)"},
	}
}

// adminToken is --token, or the token the process serving --data-dir
// generated there ("" when neither exists: the call is then refused with
// 401, and the error says where a token comes from).
func adminToken(c *cli.Context) (string, error) {
	if t := c.String("token"); t != "" {
		return t, nil
	}
	t, err := admin.ReadToken(c.String("data-dir"))
	if errors.Is(err, admin.ErrNoTokenFile) {
		return "", nil
	}
	return t, err
}

// adminCall sends a request to the admin API and decodes a JSON answer.
func adminCall(c *cli.Context, method, path string, body []byte, out any) error {
	token, err := adminToken(c)
	if err != nil {
		return usageError{err}
	}
	base := strings.TrimRight(c.String("admin"), "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return usageError{err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/wasm") // the only body the API takes: a module
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s: %w (is `helios-wasm run --admin` running?)", base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b)) // the Host and Origin checks answer in plain text
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Error += fmt.Sprintf(" (pass --token, or --data-dir of the running process to use its %s)", admin.TokenFile)
		}
		err := fmt.Errorf("admin API %s %s: %s: %s", method, path, resp.Status, e.Error)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return usageError{err}
		}
		return err
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// targetPipeline is --pipeline, or the only pipeline of the process.
func targetPipeline(c *cli.Context) (string, error) {
	if n := c.String("pipeline"); n != "" {
		return n, nil
	}
	var all []runtime.Status
	if err := adminCall(c, "GET", "/v1/pipelines", nil, &all); err != nil {
		return "", err
	}
	if len(all) != 1 {
		return "", usagef("%d pipelines run there: choose one with --pipeline", len(all))
	}
	return all[0].Name, nil
}

func swapCommand() *cli.Command {
	return &cli.Command{
		Name:      "swap",
		Usage:     "replace a running pipeline's plugin without restarting it",
		ArgsUsage: "NEW.wasm",
		Description: "The new module is validated and initialised on every partition before it takes effect; a module that fails\n" +
			"is refused and the old one keeps running. The switch happens between two transactions: no record is lost or\n" +
			"processed twice, and operator state is kept.\n\n" +
			"Example:\n  helios-wasm plugin swap --admin 127.0.0.1:8080 build/plugins/go/lowercase.wasm",
		Flags: append(adminFlags(), &cli.StringSliceFlag{Name: "config", Aliases: []string{"c"}, Usage: "operator config key=value (repeatable)"}),
		Action: func(c *cli.Context) error {
			if err := requireArgs(c, 1, "one NEW.wasm"); err != nil {
				return err
			}
			wasm, err := os.ReadFile(c.Args().First())
			if err != nil {
				return usagef("plugin: %v", err)
			}
			name, err := targetPipeline(c)
			if err != nil {
				return err
			}
			q := url.Values{"name": {filepath.Base(c.Args().First())}}
			for _, kv := range c.StringSlice("config") {
				q.Add("config", kv)
			}
			var res runtime.SwapResult
			if err := adminCall(c, "POST", "/v1/pipelines/"+url.PathEscape(name)+"/plugin?"+q.Encode(), wasm, &res); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "pipeline %s now runs %s (version %d, was %s)\n", name, res.Hash[:12], res.Version, res.Previous[:12])
			return nil
		},
	}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:        "rollback",
		Usage:       "swap a running pipeline back to its previous plugin version",
		Description: "Example:\n  helios-wasm plugin rollback --admin 127.0.0.1:8080 --pipeline orders",
		Flags:       adminFlags(),
		Action: func(c *cli.Context) error {
			name, err := targetPipeline(c)
			if err != nil {
				return err
			}
			var res runtime.SwapResult
			if err := adminCall(c, "POST", "/v1/pipelines/"+url.PathEscape(name)+"/rollback", nil, &res); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "pipeline %s rolled back to %s (version %d)\n", name, res.Hash[:12], res.Version)
			return nil
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the pipelines of a running process: plugin version, offsets, lag, throughput, DLQ size",
		Description: "Asks the admin API (--admin), or with --data-dir the process holding that data directory.\n\n" +
			"Examples:\n  helios-wasm status --admin 127.0.0.1:8080\n  helios-wasm status --data-dir ./helios-data",
		Flags: adminFlags()[:3],
		Action: func(c *cli.Context) error {
			var all []runtime.Status
			var err error
			if c.IsSet("data-dir") && !c.IsSet("admin") {
				err = getData(c, "/v1/pipelines", &all)
			} else {
				err = adminCall(c, "GET", "/v1/pipelines", nil, &all)
			}
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PIPELINE\tPLUGIN\tVERSION\tSTATE\tIN\tOUT\tRECORDS/S\tDLQ\tOFFSETS\tLAG")
			for _, s := range all {
				state := "running"
				switch {
				case s.Error != "":
					state = "failed: " + s.Error
				case s.Ended:
					state = "ended"
				case s.Paused:
					state = "paused"
				}
				if s.Assigned != nil {
					state += fmt.Sprintf(" (partitions %v of the group)", s.Assigned)
				}
				fmt.Fprintf(w, "%s\t%s %s\t%d\t%s\t%d\t%d\t%.0f\t%d\t%v\t%v\n", s.Name, s.Plugin, s.PluginHash[:12], s.PluginVersion, state,
					s.RecordsIn, s.RecordsOut, s.RecordsPerSec, s.DLQSize, s.Offsets, s.Lag)
			}
			return w.Flush()
		},
	}
}

// watchPlugin swaps p's plugin whenever the file at path changes (checked
// every 300 ms; a change must hold still for one more check), until ctx ends.
func watchPlugin(ctx context.Context, p *runtime.Pipeline, path string, cfg []abi.Header) {
	hashOf := func() ([32]byte, []byte, bool) {
		b, err := os.ReadFile(path)
		if err != nil {
			return [32]byte{}, nil, false
		}
		return sha256.Sum256(b), b, true
	}
	last, _, _ := hashOf()
	var pending [32]byte
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h, b, ok := hashOf()
		switch {
		case !ok || h == last:
			pending = [32]byte{}
			continue
		case h != pending: // changed: wait one tick for the write to finish
			pending = h
			continue
		}
		last, pending = h, [32]byte{}
		plugin, err := p.Engine().Compile(ctx, filepath.Base(path), b)
		if err == nil {
			_, err = p.Swap(ctx, plugin, cfg)
		}
		if err != nil {
			slog.Error("watch: swap refused; the running plugin stays", "plugin", path, "error", err)
		}
	}
}
