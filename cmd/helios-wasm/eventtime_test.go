package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// evTS is an event time n seconds after a fixed instant, as RFC 3339.
func evTS(n int) string {
	return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second).Format(time.RFC3339)
}

// TestRunEventTime: --event-time (here from HELIOS_EVENT_TIME) routes
// records by event time: unreadable ones are dead-lettered with code 113
// (EVENT_TIME), and a second run judges appended records against the
// watermark the first committed: beyond --allowed-lateness they go to the
// late output (dlq: code 114, LATE), within it to the operator.
func TestRunEventTime(t *testing.T) {
	dir := t.TempDir()
	in, out, data := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "data")
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf(`{"ts":%q,"n":%d}`, evTS(i*10), i)) // 0..190 s
	}
	lines = append(lines, `{"ts":"soon","n":20}`, `{"n":21}`)
	writeLines(t, in, lines)
	args := []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "file:" + in, "--output", "file:" + out,
		"--data-dir", data, "--admin", "", "--name", "ev", "--watermark-delay", "10s", "--allowed-lateness", "1m"}
	env := append(testEnv(t), "HELIOS_EVENT_TIME=json:ts")
	r := runCLI(t, "", env, args...)
	if r.code != 0 || !strings.Contains(r.stderr, "2 records went to the dead-letter queue") {
		t.Fatalf("exit %d, want 0 with 2 dead-lettered\nstderr: %s", r.code, r.stderr)
	}
	if got := len(readLines(t, out)); got != 20 {
		t.Fatalf("%d outputs, want 20", got)
	}
	// Watermark 180 s: 100 s is 80 s late (beyond 1m), 150 s 30 s (within).
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "{\"ts\":%q,\"n\":22}\n{\"ts\":%q,\"n\":23}\n{\"ts\":%q,\"n\":24}\n", evTS(100), evTS(150), evTS(300))
	f.Close()
	r = runCLI(t, "", env, args...)
	if r.code != 0 || !strings.Contains(r.stderr, "1 records were more than --allowed-lateness behind the watermark: sent to --late-output dlq") {
		t.Fatalf("second run: exit %d\nstderr: %s", r.code, r.stderr)
	}
	got := readLines(t, out)
	if len(got) != 22 || !strings.Contains(got[20], `"N":23`) || !strings.Contains(got[21], `"N":24`) {
		t.Fatalf("outputs %q, want records 23 and 24 appended", got[20:])
	}
	r = runCLI(t, "", nil, "dlq", "list", "--data-dir", data, "--name", "ev")
	if r.code != 0 {
		t.Fatalf("dlq list: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"113 EVENT_TIME", `field \"ts\": \"soon\" is not an RFC 3339 time`, `no field \"ts\"`, "114 LATE", "1m20s behind the watermark"} {
		if !strings.Contains(r.stdout, want) && !strings.Contains(strings.ReplaceAll(r.stdout, `\"`, `"`), strings.ReplaceAll(want, `\"`, `"`)) {
			t.Errorf("dlq list lacks %q:\n%s", want, r.stdout)
		}
	}
	// late lists both late records, from the data directory and then
	// through a process holding it.
	wantLate := []string{`"event_time":"` + evTS(100) + `","watermark":"` + evTS(180) + `","lateness_ms":80000,"decision":"drop"}`,
		`"event_time":"` + evTS(150) + `","watermark":"` + evTS(180) + `","lateness_ms":30000,"decision":"accept"}`}
	checkLate := func(how string) {
		t.Helper()
		r := runCLI(t, "", nil, "late", "--data-dir", data)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(lines) != 2 || !strings.HasSuffix(lines[0], wantLate[0]) || !strings.HasSuffix(lines[1], wantLate[1]) ||
			!strings.Contains(r.stderr, "1 late records accepted, 1 sent to the late output") {
			t.Errorf("late (%s): exit %d\nstdout: %s\nstderr: %s\nwant lines ending %q", how, r.code, r.stdout, r.stderr, wantLate)
		}
	}
	checkLate("offline")
	cmd, _ := startLogged(t, append(args, "--event-time", "json:ts", "--follow", "--admin", "127.0.0.1:0")...)
	checkLate("while running")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}

// TestEventTimeUsageErrors: bad event-time settings are refused before
// anything runs, naming the flag (and its variable).
func TestEventTimeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	writeLines(t, in, []string{`{"ts":1}`})
	base := []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "file:" + in, "--output", "-", "--at-least-once", "--data-dir", filepath.Join(dir, "data"), "--admin", ""}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--watermark-delay", "1s"}, []string{"--watermark-delay (or HELIOS_WATERMARK_DELAY): event-time settings need --event-time"}},
		{[]string{"--event-time", "json:ts", "--late-output", "kafka:late"}, []string{`late output kafka:late: a kafka: late output needs a kafka: input and a kafka: output`}},
		{[]string{"--event-time", "json:ts", "--late-output", "log:"}, []string{`"log:": want dlq, log:TOPIC, kafka:TOPIC or drop`}},
		{[]string{"--event-time", "json:ts", "--allowed-lateness-for", "1", "--allowed-lateness-for", "x=1m", "--allowed-lateness", "-1s"},
			[]string{`--allowed-lateness-for (or HELIOS_ALLOWED_LATENESS_FOR) "1": want PARTITION=DURATION`, `partition "x" is not a partition number`, "--allowed-lateness (or HELIOS_ALLOWED_LATENESS) -1s: must not be negative"}},
		{[]string{"--event-time", "record", "--event-time-format", "unix"}, []string{"--event-time-format (or HELIOS_EVENT_TIME_FORMAT) \"unix\": applies to json: and header: sources only"}},
		{[]string{"--event-time", "json:"}, []string{`event time spec "json:"`, "json: needs a field name"}},
		{[]string{"--event-time", "json:ts", "--no-dlq"}, []string{"--late-output (or HELIOS_LATE_OUTPUT) dlq: --no-dlq turns the dead-letter queue off"}},
		{[]string{"--event-time", "json:ts", "--allowed-lateness-for", "4=1m"}, []string{"allowed lateness for partition 4, but file:"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, "", testEnv(t), append(append([]string{}, base...), tc.args...)...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// TestEventTimeUnreadableNoDLQ: with --no-dlq (and a late output that
// needs no queue) an unreadable event time stops the run with exit 2,
// naming its offset, code and value, after committing what came before its batch.
func TestEventTimeUnreadableNoDLQ(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeLines(t, in, []string{`{"ts":1}`, `{"ts":2}`, `{"ts":"x"}`})
	r := runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "file:"+in, "--output", "file:"+out,
		"--data-dir", filepath.Join(dir, "data"), "--admin", "", "--batch-size", "2", "--no-dlq",
		"--event-time", "json:ts", "--event-time-format", "unix", "--late-output", "drop")
	if r.code != 2 || !strings.Contains(r.stderr, "offset 18") || !strings.Contains(r.stderr, "(code 113)") ||
		!strings.Contains(r.stderr, `field "ts" is a JSON string ("x"), want a number of seconds (format unix)`) {
		t.Fatalf("exit %d, want 2 naming the offset, code and value\nstderr: %s", r.code, r.stderr)
	}
	if got := readLines(t, out); len(got) != 2 {
		t.Fatalf("outputs %q, want the first batch's 2", got)
	}
}

// TestServeEventTimeFields: a served pipeline's event-time fields are read
// and validated with their place in the file.
func TestServeEventTimeFields(t *testing.T) {
	clearConfigEnv(t)
	good := "pipelines:\n  - {name: p, plugin: p.wasm, input: log:in, output: log:out, event_time: 'header:ts', event_time_format: unix-ms,\n" +
		"     watermark_delay: 2s, idle_timeout: 1m, allowed_lateness: 30s, allowed_lateness_for: ['0=1h'], late_output: 'log:late'}\n"
	cfg, err := loadServe(t, writeFile(t, "good.yaml", good))
	if err != nil {
		t.Fatal(err)
	}
	et, err := cfg.Pipelines[0].eventTime(func(f string) string { return f })
	if err != nil || et == nil || et.Extract != "header:ts" || et.Format != "unix-ms" || et.WatermarkDelay != 2*time.Second || et.IdleTimeout != time.Minute ||
		et.AllowedLateness != 30*time.Second || et.AllowedLatenessFor[0] != time.Hour || et.LateOutput != "log:late" {
		t.Fatalf("event time %+v, %v", et, err)
	}
	if et, _ := cfg.Pipelines[0].eventTime(func(f string) string { return f }); et == nil {
		t.Fatal("nil")
	}
	defaults, _ := servedSpec{EventTime: "record"}.eventTime(func(f string) string { return f })
	if defaults.WatermarkDelay != defaultWatermarkDelay || defaults.AllowedLateness != defaultAllowedLateness || defaults.LateOutput != "dlq" {
		t.Errorf("defaults %+v, want the run flags' defaults", defaults)
	}
	bad := "pipelines:\n  - {name: p, plugin: p.wasm, input: log:in, output: log:out, watermark_delay: soon, late_output: drop}\n" +
		"  - {name: q, plugin: p.wasm, input: log:in, output: log:out, event_time: 'json:ts', late_output: 'nowhere', allowed_lateness: -1s}\n"
	_, err = loadServe(t, writeFile(t, "bad.yaml", bad))
	for _, w := range []string{`bad.yaml:2:5: pipelines[0] (p): watermark_delay "soon": want a duration`,
		`bad.yaml:3:5: pipelines[1] (q): late_output "nowhere": want dlq, log:TOPIC, kafka:TOPIC or drop`,
		"bad.yaml:3:5: pipelines[1] (q): allowed_lateness -1s: must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	_, err = loadServe(t, writeFile(t, "noev.yaml", "pipelines:\n  - {name: p, plugin: p.wasm, input: log:in, output: log:out, late_output: drop}\n"))
	if err == nil || !strings.Contains(err.Error(), "pipelines[0] (p): late_output: event-time settings need") {
		t.Errorf("error %v: want late_output without event_time refused", err)
	}
}
