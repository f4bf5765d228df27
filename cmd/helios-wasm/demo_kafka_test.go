package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/internal/kafkademo"
	"github.com/heliosdb/helios-wasm/internal/kafkatest"
)

// TestDemoKafka runs the scenario of `make demo-kafka` (internal/kafkademo)
// on the shared broker with fewer records, so that the demo cannot rot: two
// instances share the input, the first is SIGKILLed once both hold
// partitions, the second takes every partition over and processes the
// records produced meanwhile, SIGTERM stops it with exit 0, and the checks
// of a read_committed read of the output (one output per input, every
// key's counts 1..n in order) pass. The checks themselves are tested
// against wrong outputs in internal/kafkademo.
func TestDemoKafka(t *testing.T) {
	c := kafkatest.Shared(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const first, second = 20_000, 5_000
	res, err := kafkademo.Run(ctx, kafkademo.Config{Brokers: c.Addrs(), CLI: cliBin, Plugin: plugin(t, "count"),
		Dir: t.TempDir(), Env: testEnv(t), Name: fmt.Sprintf("demo-%d-%d", os.Getpid(), time.Now().UnixNano()),
		Keys: 31, First: first, Second: second, KillAfter: 5_000, StepTimeout: time.Minute, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !res.Pass() || res.Inputs != first+second || res.Outputs != first+second {
		t.Fatalf("%s\n%s", res.Summary(), out.String())
	}
	if len(res.KilledHeld) == 0 || res.SurvivorExit != "exit 0" {
		t.Fatalf("a held %v when killed, b ended with %q\n%s", res.KilledHeld, res.SurvivorExit, out.String())
	}
	_, after, _ := strings.Cut(out.String(), "== 3. SIGKILL a")
	if !strings.Contains(after, "b: partitions assigned") {
		t.Errorf("the narration does not show b's takeover after the kill:\n%s", out.String())
	}
	t.Logf("%s\n%s", out.String(), res.Summary())
}
