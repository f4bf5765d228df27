package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// windowInput is n JSON Lines records of keys u0..u4 whose event times
// advance 3 s a record, each up to 30 s out of order (within the default
// 5m allowed lateness, so none is late), with amounts that are negative,
// fractional or whole.
func windowInput(n int) (lines []string, times []time.Time, keys []string, amounts []float64) {
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i := range n {
		at := base.Add(time.Duration(i*3+(i*37)%60-30) * time.Second)
		key := fmt.Sprintf("u%d", i%5)
		amount := float64(i%7)*0.5 - 1.1
		lines = append(lines, fmt.Sprintf(`{"user":%q,"ts":%q,"amount":%s,"i":%d}`, key, at.Format(time.RFC3339), strconv.FormatFloat(amount, 'f', -1, 64), i))
		times, keys, amounts = append(times, at), append(keys, key), append(amounts, amount)
	}
	return
}

// windowsOf lists the windows [start, end) of a tumbling (slide = size) or
// sliding window spec that contain t, aligned to the Unix epoch.
func windowsOf(t time.Time, size, slide time.Duration) [][2]time.Time {
	var out [][2]time.Time
	last := t.Truncate(slide) // Truncate is relative to the zero time; whole minutes and seconds align with the epoch too
	for start := last; start.After(t.Add(-size)); start = start.Add(-slide) {
		out = append([][2]time.Time{{start, start.Add(size)}}, out...)
	}
	return out
}

// TestRunWindows runs window_count and window_sum over out-of-order event
// times in small batches (windows close between batches as the watermark
// passes them, the rest at the end of the input) and checks every output
// line, byte for byte, against a reference computed here: under final one
// line per key and window with its count or sum; under updates one line
// per record and window, with the running count or sum in input order.
func TestRunWindows(t *testing.T) {
	lines, times, keys, amounts := windowInput(400)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	writeLines(t, in, lines)
	for _, tc := range []struct {
		op, window, emit string
		size, slide      time.Duration
	}{
		{"window_count", "tumbling:1m", "final", time.Minute, time.Minute},
		{"window_sum", "tumbling:1m", "final", time.Minute, time.Minute},
		{"window_count", "sliding:2m/30s", "final", 2 * time.Minute, 30 * time.Second},
		{"window_sum", "sliding:2m/30s", "updates", 2 * time.Minute, 30 * time.Second},
		{"window_count", "tumbling:1m", "updates", time.Minute, time.Minute},
	} {
		t.Run(tc.op+"/"+tc.window+"/"+tc.emit, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			args := []string{"run", "--plugin", plugin(t, tc.op), "--input", "file:" + in, "--output", "file:" + out,
				"--data-dir", filepath.Join(t.TempDir(), "data"), "--admin", "", "--config", "key_field=user",
				"--event-time", "json:ts", "--window", tc.window, "--batch-size", "25"}
			if tc.op == "window_sum" {
				args = append(args, "--config", "field=amount")
			}
			env := append(testEnv(t), "HELIOS_EMIT="+tc.emit)
			r := runCLI(t, "", env, args...)
			if r.code != 0 {
				t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
			}
			// The reference: running values per (key, window), in input order.
			type kw struct {
				key        string
				start, end time.Time
			}
			count, sum := map[kw]int{}, map[kw]float64{}
			var want []string
			format := func(k kw) string {
				s := fmt.Sprintf(`{"key":%q,"window_start":%q,"window_end":%q,`, k.key, k.start.Format(time.RFC3339), k.end.Format(time.RFC3339))
				if tc.op == "window_sum" {
					return s + `"sum":` + strconv.FormatFloat(sum[k], 'f', -1, 64) + "}"
				}
				return s + `"count":` + strconv.Itoa(count[k]) + "}"
			}
			var order []kw
			for i := range lines {
				for _, w := range windowsOf(times[i], tc.size, tc.slide) {
					k := kw{keys[i], w[0], w[1]}
					if count[k] == 0 {
						order = append(order, k)
					}
					count[k]++
					sum[k] += amounts[i]
					if tc.emit == "updates" {
						want = append(want, format(k))
					}
				}
			}
			if tc.emit == "final" {
				for _, k := range order {
					want = append(want, format(k))
				}
			}
			got := readLines(t, out)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				missing, extra := diffLines(want, got), diffLines(got, want)
				t.Fatalf("%d lines, want %d; missing %d (first %q), unexpected %d (first %q)", len(got), len(want), len(missing), first(missing), len(extra), first(extra))
			}
		})
	}
}

// diffLines returns the lines of a not in b (multisets, both sorted).
func diffLines(a, b []string) []string {
	var out []string
	j := 0
	for _, s := range a {
		for j < len(b) && b[j] < s {
			j++
		}
		if j < len(b) && b[j] == s {
			j++
			continue
		}
		out = append(out, s)
	}
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// TestWindowUsageErrors: bad window settings are refused before anything
// runs, naming the flag; a plain operator is refused under --window.
func TestWindowUsageErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	writeLines(t, in, []string{`{"ts":1}`})
	base := []string{"run", "--input", "file:" + in, "--output", "file:" + filepath.Join(dir, "out"), "--data-dir", filepath.Join(dir, "data"), "--admin", ""}
	wc, count := plugin(t, "window_count"), plugin(t, "count")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--plugin", wc, "--window", "tumbling:1m"}, "--window (or HELIOS_WINDOW): event-time settings need --event-time"},
		{[]string{"--plugin", wc, "--event-time", "json:ts", "--window", "session:-30s"}, `--window (or HELIOS_WINDOW): window spec "session:-30s": gap -30s must be positive`},
		{[]string{"--plugin", wc, "--event-time", "json:ts", "--window", "tumbling:0s"}, `--window (or HELIOS_WINDOW): window spec "tumbling:0s": size 0s must be positive`},
		{[]string{"--plugin", wc, "--event-time", "json:ts", "--emit", "updates"}, "--emit (or HELIOS_EMIT) updates: applies to windows only: set --window (or HELIOS_WINDOW) too"},
		{[]string{"--plugin", wc, "--event-time", "json:ts", "--window", "tumbling:1m", "--emit", "all"}, `--emit (or HELIOS_EMIT) "all": want final or updates`},
		{[]string{"--plugin", count, "--event-time", "json:ts", "--window", "tumbling:1m"}, "does not export helios_window_close"},
	} {
		r := runCLI(t, "", testEnv(t), append(slices.Clone(base), tc.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// plugin inspect tells a window operator from another.
	for p, want := range map[string]string{wc: "true", count: "false"} {
		r := runCLI(t, "", testEnv(t), "plugin", "inspect", p)
		if r.code != 0 || !regexp.MustCompile(`(?m)^window operator:\s+`+want+`$`).MatchString(r.stdout) {
			t.Errorf("plugin inspect %s: exit %d, want window operator: %s\n%s", filepath.Base(p), r.code, want, r.stdout)
		}
	}
}

// TestRetryRecordsOfWindows: `dlq retry` of a windowed pipeline leaves its
// records' dead letters in the queue and says why: run outside its window,
// a record failed in an SDK's window operator ("this call has no window:
// run the pipeline with --window", on a pipeline that has one) or wrote
// state outside every window, which a raw module's retry committed.
func TestRetryRecordsOfWindows(t *testing.T) {
	dir := t.TempDir()
	in, data := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "data")
	writeLines(t, in, []string{`{"user":"a","ts":"2026-01-01T00:00:00Z"}`, `{"user":"b"}`}) // b has no event time
	if r := runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "window_count"), "--input", "file:"+in, "--output", "file:"+filepath.Join(dir, "out.jsonl"),
		"--data-dir", data, "--admin", "", "--config", "key_field=user", "--event-time", "json:ts", "--window", "tumbling:1m", "--name", "w"); r.code != 0 {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	r := runCLI(t, "", testEnv(t), "dlq", "retry", "--all", "--data-dir", data)
	if r.code != 0 || !strings.Contains(r.stderr, "retried 0 entries") || !strings.Contains(r.stderr, "skipped 1 records of windows") {
		t.Fatalf("retry: %d %s", r.code, r.stderr)
	}
	if list := runCLI(t, "", nil, "dlq", "list", "--data-dir", data); !strings.Contains(list.stdout, "113 EVENT_TIME") {
		t.Fatalf("the entry left the queue:\n%s", list.stdout)
	}
}
