package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/storage"
)

// Hardening of file inputs and outputs (issue #10).

// runFiles runs pipeline name of db from the file in to the file out.
func runFiles(t *testing.T, db *storage.DB, name, in, out string, mod func(*Config)) (Stats, error) {
	t.Helper()
	src, err := newFileSource(in)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := newFileSink(out)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	cfg := Config{Name: name, DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 100}
	if mod != nil {
		mod(&cfg)
	}
	return runPipeline(t, cfg)
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

func numbered(from, n int) string {
	return lines(n, func(i int) string { return fmt.Sprintf(`{"n":%d}`, from+i) })
}

// Item 1: an output file belongs to one pipeline. Before the owner record,
// rerunning day 1 into all.jsonl after day 2 had been appended truncated
// day 2's committed lines and exited 0.
func TestFileOutputBelongsToOnePipeline(t *testing.T) {
	dir := t.TempDir()
	day1, day2, all := filepath.Join(dir, "day1.jsonl"), filepath.Join(dir, "day2.jsonl"), filepath.Join(dir, "all.jsonl")
	os.WriteFile(day1, []byte(numbered(0, 1000)), 0o644)
	os.WriteFile(day2, []byte(numbered(1000, 1000)), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()

	if _, err := runFiles(t, db, "day1", day1, all, nil); err != nil {
		t.Fatal(err)
	}
	// A second pipeline is refused up front, naming the owner and the way out.
	_, err := runFiles(t, db, "day2", day2, all, nil)
	if !errors.Is(err, ErrOutputOwned) {
		t.Fatalf("second pipeline into the same output: %v, want ErrOutputOwned", err)
	}
	for _, want := range []string{`pipeline "day1"`, fmt.Sprintf("%d bytes committed", len(numbered(0, 1000))), ownerRecordPath(all), "delete"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// The same pipeline name in another data directory is another pipeline.
	db2 := diskDB(t, filepath.Join(dir, "data2"))
	if _, err := runFiles(t, db2, "day1", day1, all, nil); !errors.Is(err, ErrOutputOwned) {
		t.Fatalf("same name, other data directory: %v, want ErrOutputOwned", err)
	}
	db2.Close()
	if n := countLines(t, all); n != 1000 {
		t.Fatalf("refused runs changed the output: %d lines", n)
	}

	// Handing the file over (deleting the owner record) lets day 2 append...
	os.Remove(ownerRecordPath(all))
	if _, err := runFiles(t, db, "day2", day2, all, nil); err != nil {
		t.Fatal(err)
	}
	// ...and then the day-1 rerun is refused instead of truncating day 2.
	if _, err := runFiles(t, db, "day1", day1, all, nil); !errors.Is(err, ErrOutputOwned) || !strings.Contains(err.Error(), `"day2"`) {
		t.Fatalf("day-1 rerun after the handover: %v", err)
	}
	if n := countLines(t, all); n != 2000 {
		t.Fatalf("output has %d lines after the refused rerun, want 2000", n)
	}
	// The owner reruns freely (nothing new to do).
	if st, err := runFiles(t, db, "day2", day2, all, nil); err != nil || st.RecordsIn != 0 {
		t.Fatalf("owner rerun: %+v %v", st, err)
	}
}

// Item 1: a concurrent writer (another open sink, as `serve` with two
// pipelines on one file, or another process) is refused while one is open.
func TestFileOutputConcurrentWriterRefused(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.jsonl")
	s1, err := newFileSink(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newFileSink(out); !errors.Is(err, ErrOutputBusy) {
		t.Fatalf("second open sink: %v, want ErrOutputBusy", err)
	}
	s1.Close()
	s2, err := newFileSink(out)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	s2.Close()
}

// Item 1: a pipeline reading its own output would feed on itself forever.
func TestInputSameAsOutputRefused(t *testing.T) {
	db := memDB(t)
	db.CreateTopic("x", 1)
	src, _ := newLogSource(db, "x")
	sink, _ := newLogSink(db, "x", 1)
	_, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, Follow: true})
	if err == nil || !strings.Contains(err.Error(), "input and output are both log:x") {
		t.Fatalf("log:x -> log:x: %v", err)
	}
}

// Smaller item: /dev/null (not a regular file) is refused with a way out,
// instead of failing every commit with "sync: invalid argument".
func TestFileOutputNotRegularRefused(t *testing.T) {
	_, err := newFileSink("/dev/null")
	if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), "output -") {
		t.Fatalf("/dev/null: %v", err)
	}
}

// replaceFile puts content at path as a new file (a new inode).
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Item 2: an input replaced by a longer file was resumed at the old byte
// offset (1000 of 2000 records skipped, exit 0). Now it is refused, and
// FromStart processes it from the start; appending still resumes.
func TestFileInputReplaced(t *testing.T) {
	for _, tt := range []struct {
		name    string
		replace func(t *testing.T, path string)
	}{
		{"new inode", func(t *testing.T, path string) { replaceFile(t, path, numbered(5000, 2000)) }},
		{"rewritten in place", func(t *testing.T, path string) { os.WriteFile(path, []byte(numbered(5000, 2000)), 0o644) }},
		{"truncated", func(t *testing.T, path string) { os.WriteFile(path, []byte(numbered(0, 10)), 0o644) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
			os.WriteFile(in, []byte(numbered(0, 1000)), 0o644)
			db := diskDB(t, filepath.Join(dir, "data"))
			defer db.Close()
			// Deduplication by position ids is on: the replacement's records
			// must not take the first file's ids (and be skipped as seen).
			dedup := func(c *Config) { c.Dedup = &DedupConfig{} }
			if st, err := runFiles(t, db, "p", in, out, dedup); err != nil || st.RecordsIn != 1000 {
				t.Fatalf("first run: %+v %v", st, err)
			}
			tt.replace(t, in)
			if _, err := runFiles(t, db, "p", in, out, nil); !errors.Is(err, ErrInputReplaced) {
				t.Fatalf("replaced input: %v, want ErrInputReplaced", err)
			}
			if n := countLines(t, out); n != 1000 {
				t.Fatalf("refused run wrote: %d lines", n)
			}
			want := map[string]int64{"new inode": 2000, "rewritten in place": 2000, "truncated": 10}[tt.name]
			for run, wantIn := range []int64{want, 0} { // the same command again resumes
				st, err := runFiles(t, db, "p", in, out, func(c *Config) { c.FromStart = true; dedup(c) })
				if err != nil || st.RecordsIn != wantIn || st.Duplicates != 0 {
					t.Fatalf("FromStart run %d: %+v %v, want %d in and no duplicates", run, st, err, wantIn)
				}
			}
			if n := countLines(t, out); n != 1000+int(want) {
				t.Fatalf("output holds %d lines, want %d", n, 1000+want)
			}
		})
	}
	// Appending is not replacing.
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(numbered(0, 1000)), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	runFiles(t, db, "p", in, out, nil)
	f, _ := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(numbered(1000, 500))
	f.Close()
	if st, err := runFiles(t, db, "p", in, out, nil); err != nil || st.RecordsIn != 500 {
		t.Fatalf("appended input: %+v %v", st, err)
	}
}

// Item 2: under follow, rename rotation (the rest of the old file, then the
// new one from 0) and copytruncate (same file, restarted at 0) lose nothing
// that reached the file before the rotation was seen.
func TestFileFollowRotation(t *testing.T) {
	// With deduplication by position ids, a new file's records must not
	// take the ids of its predecessor's (they would be skipped as seen).
	for _, dedup := range []*DedupConfig{nil, {}} {
		t.Run(fmt.Sprintf("dedup=%v", dedup != nil), func(t *testing.T) { testFileFollowRotation(t, dedup) })
	}
}

func testFileFollowRotation(t *testing.T, dedup *DedupConfig) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(numbered(0, 100)), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	defer sink.Close()
	p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 10, Follow: true, Logger: quiet, Dedup: dedup})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := p.Run(ctx); done <- err }()
	waitOut := func(n int) {
		t.Helper()
		for countLines(t, out) < n {
			select {
			case err := <-done:
				t.Fatalf("pipeline ended: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
			if ctx.Err() != nil {
				t.Fatalf("waiting for %d output lines, have %d", n, countLines(t, out))
			}
		}
	}
	waitOut(100)
	// Rename rotation; the old file still gets a last line, without newline.
	if err := os.Rename(in, in+".1"); err != nil {
		t.Fatal(err)
	}
	old, _ := os.OpenFile(in+".1", os.O_APPEND|os.O_WRONLY, 0)
	old.WriteString(`{"n":100}`)
	old.Close()
	os.WriteFile(in, []byte(numbered(101, 100)), 0o644)
	waitOut(201)
	// Copytruncate: the contents are copied away, the file cut to 0 and
	// written again (shorter than what was read).
	os.Truncate(in, 0)
	f, _ := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(numbered(201, 50))
	f.Close()
	waitOut(251)
	p.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if want := strings.ToUpper(numbered(0, 251)); string(b) != want {
		t.Fatalf("output after rotations differs:\n%s", b)
	}
}

// Item 3: a run that starts while a writer is mid-line took the partial
// line as a record, and the next run resumed after it (12345 became 12 and
// 345). Only newline-terminated lines are records now.
func TestLineBeingWrittenIsNotSplit(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(`{"a":1}`+"\n"+`{"a":12`), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	var logs bytes.Buffer
	p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Run(context.Background())
	sink.Close()
	if err != nil || st.RecordsIn != 1 || st.DeadLettered != 0 {
		t.Fatalf("run during the write: %+v %v", st, err)
	}
	if !strings.Contains(logs.String(), "without newline: left uncommitted") || !strings.Contains(logs.String(), "bytes=7") {
		t.Fatalf("no warning about the 7 bytes left:\n%s", logs.String())
	}
	f, _ := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("345}\n")
	f.Close()
	if st, err := runFiles(t, db, "p", in, out, nil); err != nil || st.RecordsIn != 1 || st.DeadLettered != 0 {
		t.Fatalf("run after the write: %+v %v", st, err)
	}
	if b, _ := os.ReadFile(out); string(b) != `{"A":1}`+"\n"+`{"A":12345}`+"\n" {
		t.Fatalf("output %q", b)
	}
}

// Item 9: a line longer than the limit is skipped without buffering it and
// dead-lettered (code 111) with its line number and offset; without a
// dead-letter queue it stops the stream with everything before it returned.
func TestLineReaderRecordTooLarge(t *testing.T) {
	const limit = 64 << 10
	huge := `{"x":"` + strings.Repeat("y", 50<<20) + `"}`
	for _, tt := range []struct {
		name  string
		input string
		final bool
	}{
		{"50 MB line", `{"a":1}` + "\n" + huge + "\n" + `{"b":2}` + "\n", false},
		{"just over the limit, within the buffer", `{"a":1}` + "\n" + `"` + strings.Repeat("z", limit) + `"` + "\n" + `{"b":2}` + "\n", false},
		{"unterminated huge last line of a complete input", `{"a":1}` + "\n" + `{"b":2}` + "\n" + huge, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, keep := range []bool{true, false} {
				l := &lineReader{name: "in", r: strings.NewReader(tt.input), final: tt.final}
				l.configure(readerConfig{maxRecordBytes: limit})
				if keep {
					l.KeepBadRecords()
				}
				var got []string
				var bad []BadRecord
				var err error
				for err == nil {
					var recs []abi.Record
					recs, _, err = l.Read(context.Background(), nil, 100, 1<<20)
					for _, r := range recs {
						got = append(got, string(r.Value))
					}
					bad = append(bad, l.TakeBadRecords()...)
					if c := cap(l.buf); c > limit+initialLineBuf {
						t.Fatalf("buffer grew to %d bytes, over the limit plus one read buffer", c)
					}
				}
				if !keep {
					if !errors.Is(err, ErrRecordTooLarge) || !errors.Is(err, ErrBadInput) || len(got) == 0 || got[0] != `{"a":1}` {
						t.Fatalf("without DLQ: records %q, error %v", got, err)
					}
					continue
				}
				if err != io.EOF || len(got) != 2 || len(bad) != 1 {
					t.Fatalf("records %q, %d bad, error %v", got, len(bad), err)
				}
				b := bad[0]
				wantLine, wantOff := int64(2), int64(len(`{"a":1}`)+1)
				if tt.final {
					wantLine, wantOff = 3, int64(len(`{"a":1}`+"\n"+`{"b":2}`+"\n"))
				}
				if b.Code != abi.FailRecordTooLarge || b.Line != wantLine || b.Offset != wantOff || len(b.Data) > tooLargeHead ||
					!errors.Is(b.Err, ErrRecordTooLarge) {
					t.Fatalf("bad line: code %d line %d offset %d, %d bytes kept, %v", b.Code, b.Line, b.Offset, len(b.Data), b.Err)
				}
			}
		})
	}
}

// Item 9: records in a log topic longer than the limit (written before it
// was lowered) are dead-lettered too.
func TestLogRecordTooLarge(t *testing.T) {
	db := memDB(t)
	db.CreateTopic("in", 1)
	b := db.NewBatch()
	for i, v := range []string{`{"a":1}`, `{"big":"` + strings.Repeat("x", 2000) + `"}`, `{"b":2}`} {
		b.Append("in", 0, &storage.Entry{Value: []byte(v), Key: []byte(fmt.Sprint(i))})
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	run := func(name string, noDLQ bool) (Stats, error, *Pipeline) {
		src, _ := newLogSource(db, "in")
		sink, _ := newLogSink(db, "out-"+name, 1)
		p, err := New(Config{Name: name, DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, MaxRecordBytes: 1000,
			DisableDeadLetter: noDLQ, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.Run(context.Background())
		return st, err, p
	}
	st, err, p := run("dlq", false)
	if err != nil || st.RecordsOut != 2 || st.DeadLettered != 1 {
		t.Fatalf("with DLQ: %+v %v", st, err)
	}
	var codes []uint32
	p.DeadLetterQueue().List(func(e DLQEntry) error { codes = append(codes, e.Code); return nil })
	if len(codes) != 1 || codes[0] != abi.FailRecordTooLarge {
		t.Fatalf("DLQ codes %v", codes)
	}
	if st, err, _ := run("nodlq", true); !errors.Is(err, ErrRecordTooLarge) || st.RecordsOut != 1 {
		t.Fatalf("without DLQ: %+v %v", st, err)
	}
}

// Item 11: an output value containing a newline failed the file sink's
// whole commit, on every rerun. Now its input record is dead-lettered
// (code 120) and the rest commits; without a DLQ the error names it.
func TestFileSinkRejectsNewlineValue(t *testing.T) {
	for _, noDLQ := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-dlq=%v", noDLQ), func(t *testing.T) {
			dir := t.TempDir()
			db := diskDB(t, filepath.Join(dir, "data"))
			defer db.Close()
			db.CreateTopic("in", 1)
			b := db.NewBatch()
			for i := 0; i < 10; i++ {
				v := fmt.Sprintf(`{"n":%d}`, i)
				if i == 6 {
					v = "two\nlines"
				}
				b.Append("in", 0, &storage.Entry{Value: []byte(v)})
			}
			if err := db.Commit(b); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out.jsonl")
			for run := 0; run < 2; run++ {
				src, _ := newLogSource(db, "in")
				sink, _ := newFileSink(out)
				p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 4,
					DisableDeadLetter: noDLQ, Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				st, err := p.Run(context.Background())
				sink.Close()
				if noDLQ {
					var re *RecordError
					if !errors.As(err, &re) || re.Code != abi.FailSinkRejected || re.Offset != 6 || !strings.Contains(err.Error(), "newline") {
						t.Fatalf("run %d without DLQ: %v", run, err)
					}
					if n := countLines(t, out); n != 4 { // the batch before the record's batch
						t.Fatalf("run %d without DLQ: %d lines committed, want 4", run, n)
					}
					continue
				}
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				if run == 0 && (st.RecordsOut != 9 || st.DeadLettered != 1) {
					t.Fatalf("%+v", st)
				}
				var ents []DLQEntry
				p.DeadLetterQueue().List(func(e DLQEntry) error { ents = append(ents, e); return nil })
				if len(ents) != 1 || ents[0].Code != abi.FailSinkRejected || ents[0].Offset != 6 || string(ents[0].Value) != "two\nlines" {
					t.Fatalf("DLQ %+v", ents)
				}
			}
			if !noDLQ && countLines(t, out) != 9 {
				t.Fatalf("%d output lines, want 9", countLines(t, out))
			}
		})
	}
}

// Item 1, crash case: after a SIGKILL the owner record's length may be stale
// (it is written on start and clean stop only); the decision record wins,
// and the owner record is brought up to date on the next start.
func TestOwnerRecordStaleLengthDecisionWins(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(numbered(0, 100)), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	if _, err := runFiles(t, db, "p", in, out, nil); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(out)
	// A crashed run's leftovers: uncommitted bytes, and a stale length.
	f, _ := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"UNCOMMITTED":1}` + "\n")
	f.Close()
	abs, _ := filepath.Abs(db.Dir())
	if err := writeOwnerRecord(out, ownerRecord{DataDir: abs, Pipeline: "p", Length: 3}); err != nil {
		t.Fatal(err)
	}
	if st, err := runFiles(t, db, "p", in, out, nil); err != nil || st.RecordsIn != 0 {
		t.Fatalf("rerun: %+v %v", st, err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatalf("output after recovery: %d bytes, want the %d committed", len(got), len(want))
	}
	b, _ := os.ReadFile(ownerRecordPath(out))
	if !strings.Contains(string(b), fmt.Sprintf(`"committed_length":%d`, len(want))) {
		t.Fatalf("owner record not brought up to date: %s", b)
	}
}

// A data directory deleted (or replaced) under an output its pipeline had
// committed into knows of no commit: the rerun would write every output a
// second time. It is refused, whether the pipeline stopped cleanly (the
// owner record written at stop) or was killed after its first commit.
func TestFileOutputDataDirWiped(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(map[bool]string{true: "clean stop", false: "killed"}[clean], func(t *testing.T) {
			dir := t.TempDir()
			in, out, data := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "data")
			os.WriteFile(in, []byte(numbered(0, 500)), 0o644)
			db := diskDB(t, data)
			src, err := newFileSource(in)
			if err != nil {
				t.Fatal(err)
			}
			sink, err := newFileSink(out)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 100}); err != nil {
				t.Fatal(err)
			}
			if clean {
				sink.Close()
			} else {
				sink.f.Close() // no owner record written at stop
			}
			db.Close()
			os.RemoveAll(data)
			db = diskDB(t, data)
			defer db.Close()
			_, err = runFiles(t, db, "p", in, out, nil)
			if !errors.Is(err, ErrOutputOwned) || !strings.Contains(err.Error(), "no record of any commit") || !strings.Contains(err.Error(), ownerRecordPath(out)) {
				t.Fatalf("rerun with a new data directory: %v, want ErrOutputOwned saying what happened", err)
			}
			if n := countLines(t, out); n != 500 {
				t.Fatalf("%d output lines after the refused rerun, want 500", n)
			}
			// Starting over as the error says.
			os.Remove(out)
			os.Remove(ownerRecordPath(out))
			if st, err := runFiles(t, db, "p", in, out, nil); err != nil || st.RecordsOut != 500 || countLines(t, out) != 500 {
				t.Fatalf("start over: %+v %v", st, err)
			}
		})
	}
}

// An output reached through a symbolic link has its owner record next to
// the real file, so a pipeline writing the real name is refused (it could
// otherwise append, and the owner's next recovery truncate its lines). A
// file with several hard links is refused outright.
func TestFileOutputLinks(t *testing.T) {
	dir := t.TempDir()
	day1, day2 := filepath.Join(dir, "day1.jsonl"), filepath.Join(dir, "day2.jsonl")
	os.WriteFile(day1, []byte(numbered(0, 100)), 0o644)
	os.WriteFile(day2, []byte(numbered(100, 100)), 0o644)
	real, link := filepath.Join(dir, "real.jsonl"), filepath.Join(dir, "link.jsonl")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	if _, err := runFiles(t, db, "day1", day1, link, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := runFiles(t, db, "day2", day2, real, nil); !errors.Is(err, ErrOutputOwned) || !strings.Contains(err.Error(), `pipeline "day1"`) {
		t.Fatalf("another pipeline into the link's target: %v, want ErrOutputOwned", err)
	}
	if n := countLines(t, real); n != 100 {
		t.Fatalf("%d lines, want 100", n)
	}
	if st, err := runFiles(t, db, "day1", day1, link, nil); err != nil || st.RecordsIn != 0 {
		t.Fatalf("owner rerun through the link: %+v %v", st, err)
	}

	// A second name (hard link): the owner, whose record is at the real
	// path, goes on; another pipeline writing the other name is refused.
	hard := filepath.Join(dir, "hard.jsonl")
	if err := os.Link(real, hard); err != nil {
		t.Fatal(err)
	}
	if st, err := runFiles(t, db, "day1", day1, link, nil); err != nil || st.RecordsIn != 0 {
		t.Fatalf("owner rerun with a hard link: %+v %v", st, err)
	}
	if _, err := runFiles(t, db, "day2", day2, hard, nil); !errors.Is(err, ErrOutputOwned) || !strings.Contains(err.Error(), "2 names (hard links)") {
		t.Fatalf("another pipeline into a second name: %v", err)
	}
	if n := countLines(t, real); n != 100 {
		t.Fatalf("%d lines, want 100", n)
	}
}

// TestOwnerRecordDecided: the owner record's "decided" mark, which refuses
// a rerun whose data directory knows of no commit, is set by a commit that
// appended to the file, and only then; an emptied file makes it stale.
func TestOwnerRecordDecided(t *testing.T) {
	out1 := []Output{{Records: []OutRecord{{Value: []byte(`{"a":1}`)}}}}
	for _, tc := range []struct {
		name    string
		commits [][]Output // before the data directory is lost
		close   bool       // stopped cleanly (else killed)
		empty   bool       // the output emptied before the rerun
		refused bool
	}{
		{name: "no commit", close: true},
		{name: "an empty commit (a first run that failed early)", commits: [][]Output{nil}, close: true},
		{name: "an appending commit, clean stop", commits: [][]Output{nil, out1}, close: true, refused: true},
		{name: "an appending commit, killed", commits: [][]Output{out1}, refused: true},
		{name: "an appending commit, the output emptied", commits: [][]Output{out1}, close: true, empty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.jsonl")
			os.WriteFile(out, []byte("predates the pipeline\n"), 0o644)
			fresh := Committed{Pipeline: "p", DataDir: dir}
			s, err := newFileSink(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Recover(context.Background(), fresh); err != nil {
				t.Fatal(err)
			}
			for i, outs := range tc.commits {
				if _, err := s.Prepare(context.Background(), uint64(i), outs); err != nil {
					t.Fatal(err)
				}
				if err := s.Commit(context.Background(), uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.close {
				s.Close()
			} else {
				s.f.Close()
			}
			if tc.empty {
				os.Truncate(out, 0)
			}
			s, err = newFileSink(out)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Recover(context.Background(), fresh) // the data directory lost: no decision
			if refused := errors.Is(err, ErrOutputOwned); refused != tc.refused || (err != nil && !refused) {
				t.Fatalf("rerun without a decision: %v, want refused %v", err, tc.refused)
			}
		})
	}
}
