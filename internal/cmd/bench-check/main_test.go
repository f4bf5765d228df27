package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRecordCheckUpdate runs what `make bench`, `make bench-check` and a
// refresh run: -record turns the fixture's output into bench.json, -update
// takes the committed baselines' definitions to the fixture's ratios, the
// check then passes, fails (exit 1) once a baseline is made better than the
// run, and -update makes it pass again. (The committed baseline values are
// a real run's, not the fixture's: only their definitions are used.)
func TestRecordCheckUpdate(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "bench.json")
	base := filepath.Join(dir, "baseline.json")
	committed, err := os.ReadFile("../../../bench/baseline.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base, committed, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(append([]string{"-baseline", base, "-json", js}, args...), &out, &errOut); code != want {
			t.Fatalf("bench-check %v: exit %d, want %d\n%s%s", args, code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}

	cmd(2) // no bench.json yet
	cmd(0, "-record", "-txt", "../../benchcheck/testdata/bench.txt")
	cmd(0, "-update")
	fixture, _ := os.ReadFile(base)
	if out := cmd(0); !strings.Contains(out, "30 ratios: 30 within tolerance, 0 improved, 0 missing (optional); no regression") {
		t.Fatalf("check: %s", out)
	}

	// A baseline far better than the run: count's Go guest at 6x native.
	tightened := regexp.MustCompile(`("name": "count go/native batch=1000",(?s:.*?)"baseline": )[0-9.]+`).ReplaceAllString(string(fixture), "${1}6")
	if tightened == string(fixture) {
		t.Fatal("the baselines have no count go/native batch=1000")
	}
	if err := os.WriteFile(base, []byte(tightened), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := cmd(1); !strings.Contains(out, "REGRESSED count go/native batch=1000: baseline 6, current 12.2, tolerance 25%") {
		t.Fatalf("check: %s", out)
	}

	cmd(0, "-update")
	if updated, _ := os.ReadFile(base); string(updated) != string(fixture) {
		t.Fatalf("-update did not set the baselines from the run:\n%s", updated)
	}
	cmd(0)
}
