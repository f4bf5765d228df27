package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	cmd := exec.Command(cliBin, "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out",
		"--data-dir", data, "--follow", "--admin", "127.0.0.1:0", "--batch-size", "100")
	cmd.Env = append(os.Environ(), testEnv(t)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrRe := regexp.MustCompile(`addr=http://(\S+)`)
	sc := bufio.NewScanner(stderr)
	var base string
	for sc.Scan() {
		if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
			base = "http://" + m[1]
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if base == "" {
		t.Fatal("the admin address was never logged")
	}
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
