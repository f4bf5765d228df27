package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsEndpoint: a running pipeline exposes the documented metric
// families on --admin, and /readyz turns ready.
func TestMetricsEndpoint(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lines := jsonRecords(3000, 3)
	if r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "2", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cmd, addr := startLogged(t, "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out",
		"--data-dir", data, "--follow", "--admin", "127.0.0.1:0", "--batch-size", "100")
	base := "http://" + addr
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, `helios_records_in_total{partition="1",pipeline=`) && strings.Contains(body, "helios_consumer_lag{") {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, family := range []string{"helios_transactions_total", "helios_commit_duration_seconds", "helios_queue_depth", "helios_batch_size",
		"helios_consumer_lag", "helios_consumer_lag_velocity", "helios_dlq_size", "helios_dlq_added_total", "helios_plugin_calls_total",
		"helios_plugin_call_duration_seconds", "helios_records_in_total", "helios_records_out_total", "helios_records_failed_total",
		"helios_flow_credits_available_bytes", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, "\n"+family) {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz: %v %v", resp, err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
}
