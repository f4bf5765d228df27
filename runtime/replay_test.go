package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/storage"
)

// TestReplayRangeEqualsOriginal: a replayed range equals the original
// output for that range, runs exactly once, and leaves the live pipeline's
// offsets alone.
func TestReplayRangeEqualsOriginal(t *testing.T) {
	dir := t.TempDir()
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	db.CreateTopic("in", 1)
	b := db.NewBatch()
	for i := 0; i < 1000; i++ {
		b.Append("in", 0, &storage.Entry{Value: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	db.Commit(b)
	out := filepath.Join(dir, "out.jsonl")
	src, _ := newLogSource(db, "in")
	sink, _ := newFileSink(out)
	if _, err := runPipeline(t, Config{Name: "live", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink}); err != nil {
		t.Fatal(err)
	}
	sink.Close()
	live, _ := newOffsetManager(db, "live", src.Identity(), 1, offsetConfig{})
	before, _ := live.Committed(0)

	replayed := filepath.Join(dir, "replay.jsonl")
	for run := 0; run < 2; run++ {
		rs, err := NewLogRangeSource(db, "in", 0, 250, 500)
		if err != nil {
			t.Fatal(err)
		}
		rsink, _ := newFileSink(replayed)
		st, err := runPipeline(t, Config{Name: "replay-1", DB: db, Plugin: testPlugin(t, "uppercase"), Source: rs, Sink: rsink, BatchSize: 64})
		rsink.Close()
		if err != nil || (run == 0 && st.RecordsIn != 250) || (run == 1 && st.RecordsIn != 0) {
			t.Fatalf("run %d: %+v %v", run, st, err)
		}
	}
	orig, _ := os.ReadFile(out)
	rep, _ := os.ReadFile(replayed)
	want := strings.Join(strings.Split(string(orig), "\n")[250:500], "\n") + "\n"
	if string(rep) != want {
		t.Fatalf("replayed range differs from the original output")
	}
	live, _ = newOffsetManager(db, "live", src.Identity(), 1, offsetConfig{})
	if after, _ := live.Committed(0); after != before {
		t.Fatalf("replay moved the live offsets: %v -> %v", before, after)
	}
}

func TestStdinArchiveReplay(t *testing.T) {
	db := memDB(t)
	var in strings.Builder
	for i := 0; i < 120; i++ {
		fmt.Fprintf(&in, "{\"i\":%d}\n", i)
	}
	src := &stdinSource{in: strings.NewReader(in.String())}
	dir := t.TempDir()
	sink, _ := newFileSink(filepath.Join(dir, "out.jsonl"))
	defer sink.Close()
	if _, err := runPipeline(t, Config{Name: "s", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 16, ArchiveMax: 50, AtLeastOnce: true}); err != nil {
		t.Fatal(err)
	}
	ents, _, err := db.ReadLog(ArchiveTopic("s"), 0, 0, 1000, 1<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, string(e.Value))
	}
	if len(got) != 50 || got[0] != `{"i":70}` || got[49] != `{"i":119}` {
		t.Fatalf("archive holds %d records from %q, want the last 50", len(got), got[0])
	}
}

// TestReplayRangeNoLongerKept: a replay range that retention (or an
// archive's record limit) has dropped is refused, naming the first offset
// kept; one that starts inside what is kept reads only its range. Before,
// the read started at the first offset kept and replayed records outside
// the range, exit 0.
func TestReplayRangeNoLongerKept(t *testing.T) {
	db := memDB(t)
	db.CreateTopic("in", 1)
	b := db.NewBatch()
	for i := range 100 {
		b.Append("in", 0, &storage.Entry{Value: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	b.RetainLog("in", 0, 40) // offsets 60..99 kept
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	read := func(from, to uint64, resume int64) ([]int64, error) {
		src, err := NewLogRangeSource(db, "in", 0, from, to)
		if err != nil {
			t.Fatal(err)
		}
		r, err := src.Open(context.Background(), 0, Position{Offset: resume}, false)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		var offs []int64
		for {
			recs, _, err := r.Read(context.Background(), nil, 7, 1<<20)
			for _, rec := range recs {
				offs = append(offs, rec.Offset)
			}
			if err == io.EOF {
				return offs, nil
			}
			if err != nil {
				return offs, err
			}
		}
	}
	for _, tc := range []struct {
		from, to uint64
		resume   int64   // the replay's committed position
		want     []int64 // nil: refused
	}{
		{from: 0, to: 10},
		{from: 50, to: 70},
		{from: 50, to: 70, resume: 55},
		{from: 0, to: 10, resume: 10, want: []int64{}}, // replayed before the records went: nothing to do
		{from: 60, to: 63, want: []int64{60, 61, 62}},
		{from: 97, to: 0, want: []int64{97, 98, 99}},
	} {
		got, err := read(tc.from, tc.to, tc.resume)
		if got == nil {
			got = []int64{}
		}
		if tc.want == nil {
			if err == nil || !strings.Contains(err.Error(), "keeps offsets from 60") {
				t.Errorf("[%d, %d): %v, %v; want refused, naming offset 60", tc.from, tc.to, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("[%d, %d): %v, %v; want %v", tc.from, tc.to, got, err, tc.want)
		}
	}
}
