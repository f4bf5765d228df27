package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// healthcheckCommand probes a running process's /healthz (or /readyz): the
// container image's HEALTHCHECK, which has no shell, curl or wget to do it.
func healthcheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "healthcheck",
		Usage: "exit 0 if a running process's admin API answers /healthz (or /readyz with --ready), 1 otherwise",
		Description: "For container health checks: the request's Host header is the address given, so a server listening\n" +
			"on 0.0.0.0 must accept it (--admin-allowed-hosts 127.0.0.1:8080, as the image sets).\n\n" +
			"Example:\n  helios-wasm healthcheck --admin 127.0.0.1:8080 --ready",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "admin", Value: "127.0.0.1:8080", Usage: "admin API address (HOST:PORT or URL) of the running process"},
			&cli.BoolFlag{Name: "ready", Usage: "probe /readyz (recovered and processing) instead of /healthz (up)"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "fail if the answer takes longer"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("healthcheck takes no arguments, got %q (see --help)", c.Args().Slice())
			}
			base := strings.TrimRight(c.String("admin"), "/")
			if !strings.Contains(base, "://") {
				base = "http://" + base
			}
			path := "/healthz"
			if c.Bool("ready") {
				path = "/readyz"
			}
			client := &http.Client{Timeout: c.Duration("timeout")}
			resp, err := client.Get(base + path)
			if err != nil {
				return fmt.Errorf("healthcheck %s%s: %w (is the process running with --admin on that address?)", base, path, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s%s: %s: %s", base, path, resp.Status, strings.TrimSpace(string(b)))
			}
			fmt.Fprint(c.App.Writer, string(b))
			return nil
		},
	}
}
