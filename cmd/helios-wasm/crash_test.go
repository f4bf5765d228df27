package main

import (
	"encoding/json"
	"fmt"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/internal/crashpoint"
)

// The crash tests run the CLI as a child, kill it with SIGKILL at random
// moments and at every named crash point of the commit path, rerun the same
// command each time, and then check that every input produced its output
// exactly once and in order. Iteration counts are part of the product's
// guarantee: never lower them to make a test pass.
const (
	crashRecords     = 100_000
	randomKills      = 20
	crashPointRounds = 2 // each named point is hit this many times per scenario
)

// crashRand returns the crash seed, logged with how to rerun it, and a
// generator of stream from it.
func crashRand(t *testing.T, stream uint64) (uint64, *rand.Rand) {
	t.Helper()
	seed := crashSeed(t)
	t.Logf("seed %d (rerun with HELIOS_CRASH_SEED=%d)", seed, seed)
	return seed, rand.New(rand.NewPCG(seed, stream))
}

func crashSeed(t *testing.T) uint64 {
	if s := os.Getenv("HELIOS_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// crashLoop first crashes `helios-wasm args...` at every named crash point
// (each run must die there), then kills it at random moments until
// randomKills kills have landed mid-run (or the job has finished), and then
// runs it to completion. It returns how many random kills landed mid-run.
func crashLoop(t *testing.T, rng *rand.Rand, seed uint64, env []string, args ...string) int {
	t.Helper()
	points := []string{crashpoint.BeforePrepare, crashpoint.AfterPrepare,
		crashpoint.BeforeOffsetWrite, crashpoint.AfterDecision, crashpoint.AfterCommit}
	if i := slices.Index(args, "--output"); i >= 0 && i+1 < len(args) && strings.HasPrefix(args[i+1], "file:") {
		points = append(points, crashpoint.AfterSinkWrite) // only a file sink has a separate sink write
	}
	if slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, crashpoint.SlowEnvVar+"=") }) {
		points = append(points, crashpoint.AfterTimeoutAbort) // slowed transactions time out and are split
	}
	for round := 0; round < crashPointRounds; round++ {
		for _, p := range points {
			spec := fmt.Sprintf("HELIOS_CRASHPOINT=%s:%d", p, 1+rng.IntN(4))
			r := runCLI(t, "", append(env, spec), args...)
			if !r.signaled {
				t.Fatalf("seed %d: %s: the run was not killed at its crash point (exit %d)\n%s", seed, spec, r.code, r.stderr)
			}
		}
	}
	midRun := 0
	for attempt := 0; midRun < randomKills && attempt < 3*randomKills; attempt++ {
		run := startCLI(t, env, args...)
		// Starting takes ~50 ms (open the store, load the cached compilation):
		// some kills land during start-up, the rest after a little progress.
		delay := time.Duration(5+rng.IntN(100)) * time.Millisecond
		select {
		case err := <-run.done:
			if err != nil {
				t.Fatalf("seed %d: run %d failed before the kill: %v\n%s", seed, attempt, err, run.stderr.String())
			}
			attempt = 3 * randomKills // the job is done: nothing left to interrupt
		case <-time.After(delay):
			run.cmd.Process.Kill()
			if err := <-run.done; err != nil {
				midRun++
			}
		}
	}
	t.Logf("%d of %d random kills landed mid-run", midRun, randomKills)
	r := runCLI(t, "", env, args...)
	if r.code != 0 {
		t.Fatalf("seed %d: final run: exit %d\n%s", seed, r.code, r.stderr)
	}
	return midRun
}

// TestUntaggedBinaryIgnoresCrashPoint builds the CLI as a release is built
// (without the crashpoints tag) and runs a job with every crash point armed
// in turn: each run must finish, exit 0 and write every record once.
func TestUntaggedBinaryIgnoresCrashPoint(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "helios-wasm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build CLI without tags: %v\n%s", err, out)
	}
	lines := jsonRecords(1000, 3)
	in := filepath.Join(dir, "in.jsonl")
	writeLines(t, in, lines)
	for i, p := range []string{crashpoint.BeforePrepare, crashpoint.AfterSinkWrite, crashpoint.AfterPrepare,
		crashpoint.BeforeOffsetWrite, crashpoint.AfterDecision, crashpoint.AfterCommit, crashpoint.AfterTimeoutAbort} {
		out := filepath.Join(dir, fmt.Sprintf("out%d.jsonl", i))
		cmd := exec.Command(bin, "run", "--plugin", plugin(t, "uppercase"), "--input", "file:"+in, "--output", "file:"+out,
			"--data-dir", filepath.Join(dir, fmt.Sprintf("data%d", i)), "--batch-size", "100")
		cmd.Env = append(append(os.Environ(), testEnv(t)...), crashpoint.EnvVar+"="+p, crashpoint.SlowEnvVar+"=1h:1000")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s=%s: an untagged binary must ignore it, but the run failed: %v\n%s", crashpoint.EnvVar, p, err, msg)
		}
		checkExactlyOnce(t, 0, p, readLines(t, out), lines, strings.ToUpper)
	}
}

func jsonRecords(n int, users int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"n":%d,"user":"u%d","msg":"hello world %d"}`, i, i%users, i)
	}
	return lines
}

// TestCrashTxnTimeoutSplit: the first four transactions of several batches
// of every run take 1.2 s longer to prepare than usual, against a 1 s
// transaction timeout, so they are aborted and committed again in halves.
// crashLoop also kills the run right after such an abort (before its
// halves commit) and at random moments; every record is in the output
// once.
func TestCrashTxnTimeoutSplit(t *testing.T) {
	seed, rng := crashRand(t, 9)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	lines := jsonRecords(20_000, 7)
	writeLines(t, in, lines)
	env := append(testEnv(t), crashpoint.SlowEnvVar+"=1200ms:4")
	crashLoop(t, rng, seed, env, "run", "--plugin", plugin(t, "uppercase"), "--input", "file:"+in,
		"--output", "file:"+out, "--data-dir", filepath.Join(dir, "data"), "--batch-size", "250", "--transaction-timeout", "1s")
	checkExactlyOnce(t, seed, "file", readLines(t, out), lines, strings.ToUpper)
}

func TestCrashFileToFile(t *testing.T) {
	seed, rng := crashRand(t, 1)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	lines := jsonRecords(crashRecords, 7)
	writeLines(t, in, lines)
	crashLoop(t, rng, seed, testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "file:"+in,
		"--output", "file:"+out, "--data-dir", filepath.Join(dir, "data"), "--batch-size", "250")
	got := readLines(t, out)
	checkExactlyOnce(t, seed, "file", got, lines, strings.ToUpper)
}

func TestCrashLogToLog(t *testing.T) {
	seed, rng := crashRand(t, 2)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lines := jsonRecords(crashRecords, 11)
	r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "4", "--key-field", "user", "--data-dir", data)
	if r.code != 0 {
		t.Fatalf("produce: %d %s", r.code, r.stderr)
	}
	crashLoop(t, rng, seed, testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in",
		"--output", "log:out", "--data-dir", data, "--batch-size", "100")
	total := 0
	for p := 0; p < 4; p++ {
		inVals := consume(t, data, "in", p)
		outVals := consume(t, data, "out", p)
		checkExactlyOnce(t, seed, fmt.Sprintf("partition %d", p), outVals, inVals, strings.ToUpper)
		total += len(outVals)
	}
	if total != crashRecords {
		t.Fatalf("seed %d: %d outputs in all, want %d", seed, total, crashRecords)
	}
}

// TestCrashStatefulCount runs the stateful count operator of every
// language (their SDKs keep state writes until the end of the batch) under
// random SIGKILLs.
func TestCrashStatefulCount(t *testing.T) {
	for _, lang := range []string{"go", "rust", "c", "cpp", "assemblyscript", "zig"} {
		t.Run(lang, func(t *testing.T) {
			// The other languages run the job so much faster than the Go
			// guest that most kills would land after it ends: more records
			// keep them landing mid-run.
			op, records := plugin(t, "count"), crashRecords
			if lang != "go" {
				op, records = testutil.Plugin(t, lang, "count"), 10*crashRecords
			}
			crashStatefulCount(t, op, records)
		})
	}
}

// TestCrashStatefulCountWasmtime is the Go count operator's crash test on
// the wasmtime engine (make test-wasmtime).
func TestCrashStatefulCountWasmtime(t *testing.T) {
	if !cliHasWasmtime() {
		t.Skip("the wasmtime engine is only in builds with -tags wasmtime (make test-wasmtime)")
	}
	// wasmtime runs the job faster than wazero: more records keep the
	// random kills landing mid-run.
	crashStatefulCount(t, plugin(t, "count"), 5*crashRecords, "--engine", "wasmtime")
}

func crashStatefulCount(t *testing.T, op string, records int, extra ...string) {
	seed, rng := crashRand(t, 3)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	lines := jsonRecords(records, 13)
	writeLines(t, in, lines)
	mid := crashLoop(t, rng, seed, testEnv(t), append([]string{"run", "--plugin", op, "--config", "key_field=user",
		"--input", "file:" + in, "--output", "file:" + out, "--data-dir", filepath.Join(dir, "data"), "--batch-size", "250"}, extra...)...)
	if mid < randomKills/2 {
		t.Errorf("only %d of %d random kills landed mid-run: the job ends too fast to test much", mid, randomKills)
	}
	// Every record's output carries the running count of its key: the whole
	// sequence is fixed, and any lost or repeated state write shows up.
	counts := map[string]int{}
	want := make([]string, len(lines))
	for i := range lines {
		u := fmt.Sprintf("u%d", i%13)
		counts[u]++
		want[i] = fmt.Sprintf(`{"key":%q,"count":%d}`, u, counts[u])
	}
	checkExactlyOnce(t, seed, "count", readLines(t, out), want, func(s string) string { return s })
}

func consume(t *testing.T, data, topic string, part int) []string {
	t.Helper()
	r := runCLI(t, "", nil, "consume", "--topic", topic, "--partition", strconv.Itoa(part), "--data-dir", data)
	if r.code != 0 {
		t.Fatalf("consume %s/%d: %d %s", topic, part, r.code, r.stderr)
	}
	s := strings.TrimSuffix(r.stdout, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// checkExactlyOnce compares outputs with the expected transform of inputs,
// reporting lost, duplicated and reordered records like a history checker.
func checkExactlyOnce(t *testing.T, seed uint64, what string, got, inputs []string, f func(string) string) {
	t.Helper()
	want := make([]string, len(inputs))
	for i, s := range inputs {
		want[i] = f(s)
	}
	if len(got) == len(want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("seed %d: %s: output %d is %q, want %q (reordered or corrupted)", seed, what, i, got[i], want[i])
			}
		}
		return
	}
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	var lost, dup int
	for _, w := range want {
		switch seen[w] {
		case 0:
			lost++
		case 1:
		default:
			dup++
		}
	}
	t.Fatalf("seed %d: %s: %d outputs, want %d: %d lost, %d duplicated", seed, what, len(got), len(want), lost, dup)
}

// TestCrashWithPoisonRecords: good, failing and trapping records under
// SIGKILL. Afterwards every good record is in the output exactly once, in
// order, and the dead-letter queue holds exactly the poison records, once
// each: each input ends up exactly once in output ∪ DLQ.
func TestCrashWithPoisonRecords(t *testing.T) {
	seed, rng := crashRand(t, 4)
	dir := t.TempDir()
	in, out, data := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "data")
	var lines, good []string
	poison := map[string]bool{}
	for i := 0; i < 10_000; i++ {
		l := fmt.Sprintf(`{"n":%d}`, i)
		switch r := rng.IntN(250); {
		case r == 0:
			l = fmt.Sprintf(`{"n":%d,"v":"boom"}`, i)
			poison[l] = true
		case r == 1:
			l = fmt.Sprintf(`{"n":%d,"v":"fail"}`, i)
			poison[l] = true
		default:
			good = append(good, l)
		}
		lines = append(lines, l)
	}
	writeLines(t, in, lines)
	crashLoop(t, rng, seed, testEnv(t), "run", "--plugin", plugin(t, "internal/testutil/guests/hostile"),
		"--input", "file:"+in, "--output", "file:"+out, "--data-dir", data, "--batch-size", "200", "--name", "poison")
	checkExactlyOnce(t, seed, "good records", readLines(t, out), good, func(s string) string { return s })
	r := runCLI(t, "", nil, "dlq", "export", "--data-dir", data)
	if r.code != 0 {
		t.Fatalf("dlq export: %s", r.stderr)
	}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e struct{ Value string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		seen[e.Value]++
	}
	for p := range poison {
		if seen[p] != 1 {
			t.Errorf("seed %d: poison record %s is in the DLQ %d times", seed, p, seen[p])
		}
	}
	if len(seen) != len(poison) {
		t.Fatalf("seed %d: %d distinct DLQ entries, want %d", seed, len(seen), len(poison))
	}
	t.Logf("%d good records output once, %d poison records dead-lettered once", len(good), len(poison))

	// A fixed plugin (one that passes everything) moves the poison records
	// to the output exactly once, even when the retry is killed and rerun.
	retry := []string{"dlq", "retry", "--all", "--plugin", plugin(t, "uppercase"), "--data-dir", data}
	for i := 0; i < 3; i++ {
		cmd := exec.Command(cliBin, retry...)
		cmd.Env = append(os.Environ(), testEnv(t)...)
		cmd.Start()
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	if r := runCLI(t, "", testEnv(t), retry...); r.code != 0 {
		t.Fatalf("dlq retry: %d %s", r.code, r.stderr)
	}
	got := readLines(t, out)
	if len(got) != len(lines) {
		t.Fatalf("seed %d: %d outputs after the retry, want %d", seed, len(got), len(lines))
	}
	counts := map[string]int{}
	for _, g := range got {
		counts[g]++
	}
	for _, l := range lines {
		want := l
		if poison[l] {
			want = strings.ToUpper(l)
		}
		if counts[want] != 1 {
			t.Fatalf("seed %d: %s appears %d times after the retry", seed, want, counts[want])
		}
	}
	if r := runCLI(t, "", nil, "dlq", "list", "--data-dir", data); !strings.Contains(r.stderr, "0 entries") {
		t.Fatalf("dlq not empty after the retry: %s", r.stderr)
	}
}
