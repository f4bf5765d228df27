package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordCheckUpdate runs what `make bench`, `make bench-check` and a
// refresh run: -record turns the fixture's output into bench.json, the
// check passes against the committed baselines, fails (exit 1) once a
// baseline is made better than the run, and -update makes it pass again.
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
	if out := cmd(0); !strings.Contains(out, "29 ratios: 29 within tolerance, 0 improved, 0 missing (optional); no regression") {
		t.Fatalf("check: %s", out)
	}

	// A baseline far better than the run: count's Go guest at 6x native.
	tightened := strings.Replace(string(committed), `"baseline": 12.18`, `"baseline": 6`, 1)
	if tightened == string(committed) {
		t.Fatal("the committed baselines have no count go/native of 12.18")
	}
	if err := os.WriteFile(base, []byte(tightened), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := cmd(1); !strings.Contains(out, "REGRESSED count go/native batch=1000: baseline 6, current 12.2, tolerance 25%") {
		t.Fatalf("check: %s", out)
	}

	cmd(0, "-update")
	updated, _ := os.ReadFile(base)
	if !strings.Contains(string(updated), `"baseline": 12.2`) {
		t.Fatalf("-update did not set the baseline from the run:\n%s", updated)
	}
	cmd(0)
}
