package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/storage"
)

var (
	engineOnce sync.Once
	engine     *host.Engine
	plugins    sync.Map
)

func testPlugin(t testing.TB, name string) *host.Plugin {
	t.Helper()
	return compileTestPlugin(t, name, func() string { return testutil.GoPlugin(t, name) })
}

// testPluginIn compiles example NAME written in LANG (build/plugins/LANG).
func testPluginIn(t testing.TB, lang, name string) *host.Plugin {
	t.Helper()
	return compileTestPlugin(t, lang+"/"+name, func() string { return testutil.Plugin(t, lang, name) })
}

// sharedEngine is the engine the tests' plugins are compiled with.
func sharedEngine() *host.Engine {
	engineOnce.Do(func() {
		e, err := host.NewEngine(context.Background(), host.Config{CacheDir: os.Getenv("HELIOS_TEST_CACHE"), Logger: quiet})
		if err != nil {
			panic(err)
		}
		engine = e
	})
	return engine
}

func compileTestPlugin(t testing.TB, name string, build func() string) *host.Plugin {
	t.Helper()
	sharedEngine()
	if p, ok := plugins.Load(name); ok {
		return p.(*host.Plugin)
	}
	wasm, err := os.ReadFile(build())
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.Compile(context.Background(), name+".wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	plugins.Store(name, p)
	return p
}

func diskDB(t testing.TB, dir string) *storage.DB {
	t.Helper()
	db, err := storage.Open(dir, storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func lines(n int, f func(i int) string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(f(i))
		b.WriteByte('\n')
	}
	return b.String()
}

func runPipeline(t testing.TB, cfg Config) (Stats, error) {
	t.Helper()
	cfg.Logger = quiet
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return p.Run(ctx)
}

func TestPipelineFileToFile(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	input := lines(2500, func(i int) string { return fmt.Sprintf(`{"n":%d,"s":"abc"}`, i) })
	os.WriteFile(in, []byte(input+"\n  \n"+`{"last":"no newline"}`), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	// Run 0 leaves the unterminated last line; run 1 says the input is
	// complete and takes it; run 2 finds nothing left.
	for run, wantIn := range []int64{2500, 1, 0} {
		src, _ := newFileSource(in)
		sink, _ := newFileSink(out)
		st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 100,
			FinalLine: run > 0})
		sink.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.RecordsIn != wantIn || st.Resumed != (run > 0) {
			t.Fatalf("run %d: %+v", run, st)
		}
	}
	got, _ := os.ReadFile(out)
	want := strings.ToUpper(input) + `{"LAST":"NO NEWLINE"}` + "\n"
	if string(got) != want {
		t.Fatalf("output differs: %d bytes, want %d", len(got), len(want))
	}
}

func TestPipelineLogToLogStateful(t *testing.T) {
	dir := t.TempDir()
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	db.CreateTopic("in", 3)
	b := db.NewBatch()
	want := map[uint32][]string{}
	counts := map[string]int{}
	for i := 0; i < 3000; i++ {
		part := uint32(i % 3)
		key := fmt.Sprintf("u%d", i%9) // u0,u3,u6 -> partition 0 ...
		b.Append("in", part, &storage.Entry{Key: []byte(key), Value: []byte(fmt.Sprintf(`{"i":%d}`, i))})
		counts[key]++
		want[part] = append(want[part], fmt.Sprintf(`{"key":%q,"count":%d}`, key, counts[key]))
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", src.Partitions())
	st, err := runPipeline(t, Config{Name: "counts", DB: db, Plugin: testPlugin(t, "count"), Source: src, Sink: sink, BatchSize: 64})
	if err != nil || st.RecordsIn != 3000 || st.RecordsOut != 3000 {
		t.Fatalf("%+v %v", st, err)
	}
	for p := uint32(0); p < 3; p++ {
		ents, _, err := db.ReadLog("out", p, 0, 10000, 1<<30, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		ids := map[[16]byte]bool{}
		for _, e := range ents {
			got = append(got, string(e.Value))
			if ids[e.ID] {
				t.Fatalf("duplicate output id %x", e.ID)
			}
			ids[e.ID] = true
		}
		if strings.Join(got, "\n") != strings.Join(want[p], "\n") {
			t.Fatalf("partition %d: %d outputs, want %d", p, len(got), len(want[p]))
		}
	}
}

func TestPipelineStdinToStdout(t *testing.T) {
	db := memDB(t)
	var out bytes.Buffer
	src := &stdinSource{in: strings.NewReader("{\"a\":1}\n\n{\"b\":2}\n")}
	sink := newWriterSink(&out)
	st, err := runPipeline(t, Config{Name: "s", DB: db, Plugin: testPlugin(t, "split"), Source: src, Sink: sink, AtLeastOnce: true})
	if err != nil || st.RecordsIn != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	if out.String() != "{\"a\":1}\n{\"b\":2}\n" {
		t.Fatalf("stdout %q", out.String())
	}
}

func TestPipelineStopWhileFollowing(t *testing.T) {
	dir := t.TempDir()
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	db.CreateTopic("in", 2)
	src, _ := newLogSource(db, "in")
	sink, _ := newFileSink(filepath.Join(dir, "out.jsonl"))
	defer sink.Close()
	p, err := New(Config{Name: "f", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, Follow: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var st Stats
	go func() { var err error; st, err = p.Run(context.Background()); done <- err }()
	for i := 0; i < 5; i++ {
		b := db.NewBatch()
		for j := 0; j < 100; j++ {
			b.Append("in", uint32(j%2), &storage.Entry{Value: []byte(`"x"`)})
		}
		db.Commit(b)
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(20 * time.Second)
	for p.in.Load() < 500 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.RecordsIn != 500 {
		t.Fatalf("%d records processed before stop, want 500", st.RecordsIn)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "out.jsonl")); bytes.Count(got, []byte("\n")) != 500 {
		t.Fatalf("%d lines committed, want 500", bytes.Count(got, []byte("\n")))
	}
}

func TestPipelineFailedRecordStops(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(lines(300, func(i int) string {
		if i == 250 {
			return `[1]`
		}
		return fmt.Sprintf(`{"user":"u%d"}`, i%2)
	})), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(filepath.Join(dir, "out.jsonl"))
	defer sink.Close()
	_, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, "filter"), Source: src, Sink: sink, BatchSize: 100, DisableDeadLetter: true,
		PluginConfig: []abi.Header{{Key: []byte("field"), Value: []byte("user")}, {Key: []byte("equals"), Value: []byte("u1")}}})
	var re *RecordError
	if !errors.As(err, &re) || re.Code != abi.FailInvalidInput || !strings.Contains(err.Error(), "not a JSON object") {
		t.Fatalf("got %v, want a RecordError", err)
	}
	// The two batches before the failing one are committed: 100 records, half kept.
	if got, _ := os.ReadFile(filepath.Join(dir, "out.jsonl")); bytes.Count(got, []byte("\n")) != 100 {
		t.Fatalf("%d lines committed, want 100", bytes.Count(got, []byte("\n")))
	}
}

func TestFileSinkRecovery(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	os.WriteFile(out, []byte("pre-existing\n"), 0o644)
	db := memDB(t)
	ctx := context.Background()
	newCoord := func() (*coordinator, *fileSink, error) {
		s, err := newFileSink(out)
		if err != nil {
			t.Fatal(err)
		}
		c := newCoordinator(db, "p", coordinatorConfig{}, &parties{sink: s})
		_, err = c.Recover(ctx)
		return c, s, err
	}
	c, s, err := newCoord()
	if err != nil {
		t.Fatal(err)
	}
	txn, _ := c.Begin(ctx)
	txn.effects.outputs = []Output{{Records: []OutRecord{{Value: []byte("one")}}}}
	c.Commit(ctx, txn)
	// A prepared but undecided transaction leaves bytes behind...
	s.Prepare(ctx, 2, []Output{{Records: []OutRecord{{Value: []byte("two")}}}})
	s.Close()
	if b, _ := os.ReadFile(out); string(b) != "pre-existing\none\ntwo\n" {
		t.Fatalf("before recovery: %q", b)
	}
	// ...which recovery removes.
	_, s, err = newCoord()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b, _ := os.ReadFile(out); string(b) != "pre-existing\none\n" {
		t.Fatalf("after recovery: %q", b)
	}
	// A file shorter than what was committed is an error, not silent loss.
	os.WriteFile(out, []byte("pre"), 0o644)
	if _, s, err = newCoord(); !errors.Is(err, ErrOutputModified) {
		t.Fatalf("got %v, want ErrOutputModified", err)
	}
	s.Close()
	if _, s, err = newCoordFor(t, db, filepath.Join(dir, "other.jsonl")); err == nil || !strings.Contains(err.Error(), "give a new pipeline its own name") {
		t.Fatalf("changing the output of a pipeline: %v", err)
	}
	s.Close()
}

func newCoordFor(t *testing.T, db *storage.DB, path string) (*coordinator, *fileSink, error) {
	s, err := newFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	c := newCoordinator(db, "p", coordinatorConfig{}, &parties{sink: s})
	_, err = c.Recover(context.Background())
	return c, s, err
}

func TestConfigValidationReportsEverything(t *testing.T) {
	_, err := New(Config{Name: "bad name", BatchSize: -1, TxnTimeout: -time.Second,
		CheckpointEvery: -1, KeepCheckpoints: 3, DeadLetterMax: -2})
	for _, want := range []string{"pipeline name", "DB is required", "Plugin is required", "Source is required", "Sink is required", "batch size -1",
		"TxnTimeout -1s is negative", "CheckpointEvery -1 is negative", "DeadLetterMax -2 is negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func shortDeadlinePlugin(t testing.TB) *host.Plugin {
	t.Helper()
	e, err := host.NewEngine(context.Background(), host.Config{CacheDir: os.Getenv("HELIOS_TEST_CACHE"), Logger: quiet, BatchTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	wasm, err := os.ReadFile(testutil.GoPlugin(t, hostileGuest))
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Compile(context.Background(), "hostile.wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// failingSink fails the Prepare of its failAt-th transaction.
type failingSink struct {
	TxnSink
	calls, failAt int
}

func (f *failingSink) Prepare(ctx context.Context, txn uint64, outs []Output) (json.RawMessage, error) {
	if f.calls++; f.calls == f.failAt {
		return nil, errors.New("injected prepare failure")
	}
	return f.TxnSink.Prepare(ctx, txn, outs)
}

// TestStatsCountOnlyCommitted: after a failed commit, the run's stats count
// the committed records only; the next run processes exactly the rest.
func TestStatsCountOnlyCommitted(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	const total = 2000
	os.WriteFile(in, []byte(lines(total, func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) })), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	var got []int64
	for run, failAt := range []int{3, 0} {
		src, _ := newFileSource(in)
		fs, _ := newFileSink(out)
		st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src,
			Sink: &failingSink{TxnSink: fs, failAt: failAt}, BatchSize: 100})
		fs.Close()
		if (err != nil) != (run == 0) {
			t.Fatalf("run %d: %v", run, err)
		}
		if st.RecordsOut != st.RecordsIn {
			t.Fatalf("run %d: %d in, %d out (uppercase is one to one)", run, st.RecordsIn, st.RecordsOut)
		}
		got = append(got, st.RecordsIn)
	}
	if got[0] == 0 || got[0]+got[1] != total {
		t.Fatalf("records in: failed run %d + next run %d, want a sum of %d", got[0], got[1], total)
	}
	if b, _ := os.ReadFile(out); bytes.Count(b, []byte("\n")) != total {
		t.Fatalf("%d output lines, want %d", bytes.Count(b, []byte("\n")), total)
	}
}

// TestAtLeastOnceRefused: a pipeline that can only be at-least-once (stdin
// input, stdout output) is refused with ErrAtLeastOnce naming why, unless
// Config.AtLeastOnce accepts it.
func TestAtLeastOnceRefused(t *testing.T) {
	db := memDB(t)
	for _, tc := range []struct {
		name   string
		src    Source
		sink   Sink
		accept bool
		why    string
	}{
		{"stdin", &stdinSource{in: strings.NewReader("")}, mustLogSink(t, db, "o1"), false, "stdin cannot be read again"},
		{"stdout", mustLogSource(t, db, "i1"), newWriterSink(io.Discard), false, "stdout cannot take back"},
		{"accepted", &stdinSource{in: strings.NewReader("")}, newWriterSink(io.Discard), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Name: "alo", DB: db, Plugin: testPlugin(t, "uppercase"), Source: tc.src, Sink: tc.sink, AtLeastOnce: tc.accept})
			if tc.accept {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrAtLeastOnce) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err %v: want ErrAtLeastOnce saying %q", err, tc.why)
			}
		})
	}
}

func mustLogSink(t *testing.T, db *storage.DB, topic string) Sink {
	s, err := newLogSink(db, topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustLogSource(t *testing.T, db *storage.DB, topic string) Source {
	if err := db.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	s, err := newLogSource(db, topic)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
