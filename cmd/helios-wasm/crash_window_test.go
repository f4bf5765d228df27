package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCrashWindows: window_count over a 4-partition log of 2 × crashRecords
// records with out-of-order event times (±3 s, and 1 % an hour behind,
// beyond the allowed lateness once the watermark has moved on), --emit
// final and --late-output log:late, under SIGKILL at every named crash
// point and at random moments; with tumbling one-minute windows, and with
// one-second session windows over records that come in bursts a minute
// apart (so that sessions open ahead of the others' records and merge as
// those arrive). Afterwards: every late record is an input record, once;
// every (key, window) has exactly one result, equal to the count of its
// input records that are not in the late topic (computed here); there is
// no other result.
func TestCrashWindows(t *testing.T) {
	for _, tc := range []struct {
		window string
		burst  int // records per burst, 0: none
	}{
		{"tumbling:1m", 0},
		{"session:1s", 2000},
	} {
		t.Run(tc.window, func(t *testing.T) { testCrashWindows(t, tc.window, tc.burst) })
	}
}

func testCrashWindows(t *testing.T, window string, burst int) {
	seed, rng := crashRand(t, 7)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	n := 2 * crashRecords
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixMilli()
	lines := make([]string, n)
	type rec struct {
		user string
		ts   int64
	}
	recs := map[string]rec{}
	far := 0
	for i := range lines {
		ts := base + int64(i)*5 + int64(rng.IntN(6000)) - 3000
		if burst > 0 {
			ts += int64(i/burst) * time.Minute.Milliseconds()
		}
		if rng.IntN(100) == 0 {
			ts -= time.Hour.Milliseconds()
			far++
		}
		user := fmt.Sprintf("u%d", i%11)
		lines[i] = fmt.Sprintf(`{"n":%d,"user":%q,"ts":%d}`, i, user, ts)
		recs[lines[i]] = rec{user, ts}
	}
	r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "4", "--key-field", "user", "--data-dir", data)
	if r.code != 0 {
		t.Fatalf("produce: %d %s", r.code, r.stderr)
	}
	kills := crashLoop(t, rng, seed, testEnv(t), "run", "--plugin", plugin(t, "window_count"), "--input", "log:in",
		"--output", "log:out", "--data-dir", data, "--batch-size", "200", "--event-time", "json:ts", "--event-time-format", "unix-ms",
		"--watermark-delay", "5s", "--allowed-lateness", "1m", "--late-output", "log:late", "--window", window)
	late := map[string]bool{}
	got := map[string]int{}
	for p := range 4 {
		for _, l := range consume(t, data, "late", p) {
			if _, ok := recs[l]; !ok || late[l] {
				t.Fatalf("seed %d: late record %s is not an input record, or is in the late topic twice", seed, l)
			}
			late[l] = true
		}
		for _, o := range consume(t, data, "out", p) {
			var res struct {
				Key   string
				Start string `json:"window_start"`
				End   string `json:"window_end"`
				Count int
			}
			if err := json.Unmarshal([]byte(o), &res); err != nil {
				t.Fatalf("seed %d: output %q: %v", seed, o, err)
			}
			k := res.Key + "|" + res.Start + "|" + res.End
			if _, dup := got[k]; dup {
				t.Fatalf("seed %d: a second final result for %s: %s", seed, k, o)
			}
			got[k] = res.Count
		}
	}
	rfc := func(ms int64) string { // as window.AppendTime
		if ms%1000 == 0 {
			return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05Z")
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	want := map[string]int{}
	times := map[string][]int64{} // session windows: each user's event times
	for l, r := range recs {
		if late[l] {
			continue
		}
		if strings.HasPrefix(window, "session:") {
			times[r.user] = append(times[r.user], r.ts)
			continue
		}
		start := r.ts - ((r.ts%60000)+60000)%60000
		want[fmt.Sprintf("%s|%s|%s", r.user, rfc(start), rfc(start+60000))]++
	}
	if gap, ok := strings.CutPrefix(window, "session:"); ok {
		g, _ := time.ParseDuration(gap)
		for user, ts := range times {
			slices.Sort(ts)
			for i := 0; i < len(ts); {
				j := i + 1
				for j < len(ts) && ts[j]-ts[j-1] <= g.Milliseconds() {
					j++
				}
				want[fmt.Sprintf("%s|%s|%s", user, rfc(ts[i]), rfc(ts[j-1]+g.Milliseconds()))] = j - i
				i = j
			}
		}
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("seed %d: %s: result %d, want %d", seed, k, got[k], c)
		}
	}
	for k, c := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("seed %d: %s: result %d for a window without records", seed, k, c)
		}
	}
	if len(late) < far/2 {
		t.Fatalf("seed %d: only %d of %d records an hour behind went to the late topic: the test exercises little", seed, len(late), far)
	}
	t.Logf("%d records, %d kills mid-run, %d late (of %d an hour behind), %d (key, window) results, each once and right", n, kills, len(late), far, len(got))
}
