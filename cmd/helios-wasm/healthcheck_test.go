package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heliosdb/helios-wasm/internal/admin"
)

// TestHealthcheckCommand probes the real admin server as the container
// image does: listening on 0.0.0.0, where only allowed Host values pass.
func TestHealthcheckCommand(t *testing.T) {
	start := func(allowed ...string) *admin.Server {
		srv, err := admin.Start(admin.Config{Addr: "0.0.0.0:0", Token: "t", AllowedHosts: allowed, Gatherer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close(context.Background()) })
		return srv
	}
	port := func(s *admin.Server) string { _, p, _ := net.SplitHostPort(s.Addr()); return p }
	open := start("127.0.0.1")
	ready := start("127.0.0.1")
	ready.SetReady(true)
	closed := start() // 0.0.0.0 with no allowed host: 127.0.0.1 is refused (421)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output string // in stdout when code is 0, in stderr otherwise
	}{
		{"healthz", []string{"--admin", "127.0.0.1:" + port(open)}, 0, "ok"},
		{"healthz as a URL", []string{"--admin", "http://127.0.0.1:" + port(open) + "/"}, 0, "ok"},
		{"readyz while recovering", []string{"--admin", "127.0.0.1:" + port(open), "--ready"}, 1, "503 Service Unavailable: not ready: recovering"},
		{"readyz when ready", []string{"--admin", "127.0.0.1:" + port(ready), "--ready"}, 0, "ready"},
		{"host not allowed", []string{"--admin", "127.0.0.1:" + port(closed)}, 1, "421 Misdirected Request"},
		{"nothing listening", []string{"--admin", nobody}, 1, "is the process running with --admin on that address?"},
		{"stray argument", []string{"extra"}, 2, "healthcheck takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, "", nil, append([]string{"healthcheck"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			got := r.stdout
			if tc.code != 0 {
				got = r.stderr
			}
			if !strings.Contains(got, tc.output) {
				t.Fatalf("output %q does not contain %q", got, tc.output)
			}
		})
	}
}
