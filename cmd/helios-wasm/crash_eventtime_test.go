package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrashEventTime: a 4-partition log with out-of-order event times
// (jitter within the watermark delay, and 1 % of records an hour behind)
// runs with --event-time and --late-output log:late under SIGKILL at random
// moments and at every named crash point. Afterwards every input record is
// exactly once in the output or in the late topic, in input order within
// each, and only records an hour behind are in the late topic.
func TestCrashEventTime(t *testing.T) {
	seed, rng := crashRand(t, 5)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixMilli()
	lines := make([]string, crashRecords)
	far := map[string]bool{}
	for i := range lines {
		ts := base + int64(i)*10 + int64(rng.IntN(6000)) - 3000 // ±3 s around 10 ms per record
		if rng.IntN(100) == 0 {
			ts -= time.Hour.Milliseconds()
		}
		lines[i] = fmt.Sprintf(`{"n":%d,"user":"u%d","ts":%d}`, i, i%11, ts)
		if base+int64(i)*10-ts > 10_000 {
			far[lines[i]] = true
		}
	}
	r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "4", "--key-field", "user", "--data-dir", data)
	if r.code != 0 {
		t.Fatalf("produce: %d %s", r.code, r.stderr)
	}
	crashLoop(t, rng, seed, testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in",
		"--output", "log:out", "--data-dir", data, "--batch-size", "100", "--event-time", "json:ts", "--event-time-format", "unix-ms",
		"--watermark-delay", "5s", "--allowed-lateness", "1m", "--late-output", "log:late")
	total, lateTotal := 0, 0
	for p := range 4 {
		in, out, late := consume(t, data, "in", p), consume(t, data, "out", p), consume(t, data, "late", p)
		oi, li := 0, 0
		for i, rec := range in {
			switch {
			case oi < len(out) && out[oi] == strings.ToUpper(rec):
				oi++
			case li < len(late) && late[li] == rec:
				if !far[rec] {
					t.Fatalf("seed %d: partition %d: record %s is in the late topic but is within the watermark delay", seed, p, rec)
				}
				li++
			default:
				t.Fatalf("seed %d: partition %d: input %d (%s) is next neither in the output nor in the late topic (lost, duplicated or reordered)", seed, p, i, rec)
			}
		}
		if oi != len(out) || li != len(late) {
			t.Fatalf("seed %d: partition %d: %d outputs and %d late records beyond the input's (duplicated)", seed, p, len(out)-oi, len(late)-li)
		}
		total += len(in)
		lateTotal += len(late)
	}
	if total != crashRecords {
		t.Fatalf("seed %d: %d input records, want %d", seed, total, crashRecords)
	}
	if lateTotal < len(far)/2 {
		t.Fatalf("seed %d: only %d of %d records an hour behind went to the late topic: the test exercises little", seed, lateTotal, len(far))
	}
	t.Logf("%d records, %d late (of %d an hour behind), each exactly once", total, lateTotal, len(far))
}
