package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// pebble.Open leaves its disk-health ticker running when it fails to
	// take the directory lock (TestLocked); that goroutine is Pebble's.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2/vfs.(*diskHealthCheckingFS).startTickerLocked.func1"))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openTest(t testing.TB, fs vfs.FS) *DB {
	t.Helper()
	db, err := Open("db", Options{Logger: quiet, FS: fs, OnFatal: func(err error) { t.Errorf("fatal: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func appendN(t testing.TB, db *DB, topic string, part uint32, from, n int) {
	t.Helper()
	b := db.NewBatch()
	for i := from; i < from+n; i++ {
		e := Entry{Timestamp: int64(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)), Headers: []byte{1, 0, 0, 0}}
		e.ID[0] = byte(i)
		if err := b.Append(topic, part, &e); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
}

func TestLogAppendRead(t *testing.T) {
	db := openTest(t, vfs.NewMem())
	defer db.Close()
	if err := db.CreateTopic("t", 2); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateTopic("t", 2); err != nil {
		t.Fatalf("re-creating with the same partitions: %v", err)
	}
	if err := db.CreateTopic("t", 3); err == nil {
		t.Fatal("re-creating with other partitions succeeded")
	}
	appendN(t, db, "t", 1, 0, 10)
	appendN(t, db, "t", 1, 10, 5)
	if hw := db.HighWater("t", 1); hw != 15 {
		t.Fatalf("high water %d, want 15", hw)
	}
	tests := []struct {
		from           uint64
		max, maxBytes  int
		first, entries int
	}{
		{0, 100, 1 << 20, 0, 15},
		{3, 4, 1 << 20, 3, 4},
		{14, 100, 1 << 20, 14, 1},
		{15, 100, 1 << 20, 0, 0},
		{0, 100, 1, 0, 1}, // a byte budget still returns one entry
	}
	for _, tt := range tests {
		got, _, err := db.ReadLog("t", 1, tt.from, tt.max, tt.maxBytes, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tt.entries {
			t.Fatalf("ReadLog(%d, %d): %d entries, want %d", tt.from, tt.max, len(got), tt.entries)
		}
		for i, e := range got {
			n := tt.first + i
			if e.Offset != uint64(n) || string(e.Value) != fmt.Sprintf("v%d", n) || string(e.Key) != fmt.Sprintf("k%d", n) ||
				e.Timestamp != int64(n) || e.ID[0] != byte(n) || !bytes.Equal(e.Headers, []byte{1, 0, 0, 0}) {
				t.Fatalf("entry %+v, want offset %d", e, n)
			}
		}
	}
	if err := db.NewBatch().Append("t", 2, &Entry{}); err == nil {
		t.Fatal("append to a missing partition succeeded")
	}
	if err := db.NewBatch().Append("nope", 0, &Entry{}); err == nil {
		t.Fatal("append to a missing topic succeeded")
	}
}

func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "A.b_c-9": true, "": false, "a b": false, "a\x00b": false, "é": false, string(make([]byte, 250)): false} {
		if err := ValidateName("topic", name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
}

func TestOffsetsStateSeqMeta(t *testing.T) {
	db := openTest(t, vfs.NewMem())
	defer db.Close()
	b := db.NewBatch()
	b.PutOffset("p", "file:/x", 0, Position{Offset: 42, Ordinal: 7})
	rotated := Position{Offset: 9, Ordinal: 2, File: FileID{Dev: 1, Ino: 2, FingerprintLen: 9, Fingerprint: 77}, Generation: 3}
	b.PutOffset("p", "file:/x", 1, rotated)
	b.PutState("p", 0, []byte("a"), []byte("1"))
	b.PutState("p", 0, []byte("b"), []byte("2"))
	b.PutState("p", 1, []byte("a"), []byte("other partition"))
	b.PutState("p2", 0, []byte("a"), []byte("other pipeline"))
	for i := uint64(1); i <= 5; i++ {
		b.PutSeq(SeqTxn, "p", i, []byte(fmt.Sprint(i)))
	}
	b.PutMeta("p", []byte("meta"))
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if pos, found, err := db.GetOffset("p", "file:/x", 0); err != nil || !found || pos != (Position{Offset: 42, Ordinal: 7}) {
		t.Fatalf("offset %v %v %v", pos, found, err)
	}
	if pos, _, err := db.GetOffset("p", "file:/x", 1); err != nil || pos != rotated {
		t.Fatalf("offset with a file id and a generation: %+v %v, want %+v", pos, err, rotated)
	}
	if _, found, _ := db.GetOffset("p", "file:/y", 0); found {
		t.Fatal("offset of another source found")
	}
	var keys []string
	db.ScanState("p", 0, func(k, v []byte) error { keys = append(keys, string(k)+"="+string(v)); return nil })
	if fmt.Sprint(keys) != "[a=1 b=2]" {
		t.Fatalf("state scan %v", keys)
	}
	b = db.NewBatch()
	b.DeleteState("p", 0, []byte("a"))
	b.DeleteSeqBefore(SeqTxn, "p", 4)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := db.GetState("p", 0, []byte("a")); found {
		t.Fatal("deleted state found")
	}
	id, data, found, err := db.LatestSeq(SeqTxn, "p")
	if err != nil || !found || id != 5 || string(data) != "5" {
		t.Fatalf("latest seq %d %q %v %v", id, data, found, err)
	}
	var ids []uint64
	db.ListSeq(SeqTxn, "p", func(id uint64, _ []byte) error { ids = append(ids, id); return nil })
	if fmt.Sprint(ids) != "[4 5]" {
		t.Fatalf("seqs after cleanup %v", ids)
	}
	if _, _, found, _ := db.LatestSeq(SeqCheckpoint, "p"); found {
		t.Fatal("checkpoint family not empty")
	}
	if names, _ := db.Pipelines(); fmt.Sprint(names) != "[p]" {
		t.Fatalf("pipelines %v", names)
	}
}

// TestReadersNeverSeePastDurable: concurrent readers tailing a partition only
// ever see a gap-free prefix, in order, while a writer appends.
func TestReadersNeverSeePastDurable(t *testing.T) {
	db := openTest(t, vfs.NewMem())
	defer db.Close()
	db.CreateTopic("t", 1)
	const total = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := uint64(0)
			var ents []Entry
			var arena []byte
			for next < total {
				if err := db.WaitBeyond(ctx, "t", 0, next); err != nil {
					t.Error(err)
					return
				}
				var err error
				ents, arena, err = db.ReadLog("t", 0, next, 64, 1<<20, ents[:0], arena)
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range ents {
					if e.Offset != next || string(e.Value) != fmt.Sprintf("v%d", next) {
						t.Errorf("reader got offset %d %q, want %d", e.Offset, e.Value, next)
						return
					}
					next++
				}
			}
		}()
	}
	for i := 0; i < total; i += 20 {
		appendN(t, db, "t", 0, i, 20)
	}
	wg.Wait()
}

// TestCrashKeepsCommitted: after a simulated power loss at a random point,
// every commit that returned is there and nothing half-written is served.
func TestCrashKeepsCommitted(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	for round := 0; round < 20; round++ {
		fs := vfs.NewCrashableMem()
		db := openTest(t, fs)
		db.CreateTopic("t", 1)
		committed := 0
		n := 1 + rng.IntN(20)
		for i := 0; i < n; i++ {
			appendN(t, db, "t", 0, committed, 10)
			committed += 10
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(100), RNG: rand.New(rand.NewPCG(seed, uint64(round)))})
		db.Close()
		db2 := openTest(t, crashed)
		if hw := db2.HighWater("t", 0); hw != uint64(committed) {
			t.Fatalf("seed %d round %d: high water %d after crash, want %d", seed, round, hw, committed)
		}
		got, _, err := db2.ReadLog("t", 0, 0, committed+10, 1<<30, nil, nil)
		if err != nil || len(got) != committed {
			t.Fatalf("seed %d round %d: read %d entries (%v), want %d", seed, round, len(got), err, committed)
		}
		db2.Close()
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(dir, Options{Logger: quiet}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("in use by another process")) {
		t.Fatalf("second open: %v", err)
	}
}

func TestProducerFencing(t *testing.T) {
	db := openTest(t, vfs.NewMem())
	defer db.Close()
	db.CreateTopic("t", 2)
	appendSeq := func(epoch uint64, part uint32, seqs ...uint64) error {
		b := db.NewBatch()
		b.SetProducer("p", epoch)
		for _, s := range seqs {
			if err := b.AppendSeq("t", part, s, &Entry{Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
		}
		return db.Commit(b)
	}
	e1, _ := db.BumpEpoch("p")
	tests := []struct {
		name  string
		epoch uint64
		part  uint32
		seqs  []uint64
		want  error
	}{
		{"first batch", e1, 0, []uint64{0, 1, 2}, nil},
		{"continues", e1, 0, []uint64{3}, nil},
		{"other partition starts at 0", e1, 1, []uint64{0}, nil},
		{"gap", e1, 0, []uint64{5}, ErrSequence},
		{"repeat", e1, 0, []uint64{3}, ErrSequence},
		{"out of order in batch", e1, 0, []uint64{4, 6}, ErrSequence},
	}
	for _, tt := range tests {
		if err := appendSeq(tt.epoch, tt.part, tt.seqs...); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	e2, _ := db.BumpEpoch("p") // a new instance starts
	if err := appendSeq(e1, 0, 4); !errors.Is(err, ErrFenced) {
		t.Fatalf("zombie write: %v", err)
	}
	if err := appendSeq(e2, 0, 0); err != nil {
		t.Fatalf("new epoch restarts at 0: %v", err)
	}
	if hw := db.HighWater("t", 0); hw != 5 {
		t.Fatalf("high water %d: a refused batch was written", hw)
	}
	if epoch, seq, found, _ := db.LastSequence("p", "t", 0); !found || epoch != e2 || seq != 0 {
		t.Fatalf("last sequence %d/%d", epoch, seq)
	}
}

// TestSkipSync: a batch marked SkipSync is not synced (a crash that keeps
// only synced bytes loses it), unless it appends to a log; a plain batch
// survives the same crash.
func TestSkipSync(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db := openTest(t, fs)
	if err := db.CreateTopic("t", 1); err != nil {
		t.Fatal(err)
	}
	commit := func(key string, skip, appendToo bool) {
		t.Helper()
		b := db.NewBatch()
		if err := b.PutState("p", 0, []byte(key), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if appendToo {
			if err := b.Append("t", 0, &Entry{Value: []byte(key)}); err != nil {
				t.Fatal(err)
			}
		}
		if skip {
			b.SkipSync()
		}
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	commit("synced", false, false)
	commit("appends", true, true)
	commit("cache", true, false)
	crashed := fs.CrashClone(vfs.CrashCloneCfg{}) // exactly what was synced
	db.Close()
	db = openTest(t, crashed)
	defer db.Close()
	for key, want := range map[string]bool{"synced": true, "appends": true, "cache": false} {
		if _, found, err := db.GetState("p", 0, []byte(key)); err != nil || found != want {
			t.Errorf("%s after the crash: found %v (%v), want %v", key, found, err, want)
		}
	}
	if hw := db.HighWater("t", 0); hw != 1 {
		t.Errorf("log high water %d after the crash, want 1", hw)
	}
}

// TestScanStateRange: the range scan lists one partition's keys in
// [lower, upper), in order, with an open upper bound for nil, and nothing of
// another partition or pipeline.
func TestScanStateRange(t *testing.T) {
	db := openTest(t, vfs.NewMem())
	defer db.Close()
	b := db.NewBatch()
	for _, k := range []string{"a", "b", "ba", "c", "d"} {
		b.PutState("p", 0, []byte(k), []byte("v"+k))
	}
	b.PutState("p", 1, []byte("b"), []byte("other partition"))
	b.PutState("p2", 0, []byte("b"), []byte("other pipeline"))
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lower, upper []byte
		want         string
	}{
		{nil, nil, "[a=va b=vb ba=vba c=vc d=vd]"},
		{[]byte("b"), []byte("c"), "[b=vb ba=vba]"},
		{[]byte("b"), nil, "[b=vb ba=vba c=vc d=vd]"},
		{nil, []byte("b"), "[a=va]"},
		{[]byte("x"), nil, "[]"},
	} {
		var keys []string
		if err := db.ScanStateRange("p", 0, c.lower, c.upper, func(k, v []byte) error { keys = append(keys, string(k)+"="+string(v)); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(keys) != c.want {
			t.Errorf("[%q, %q): %v, want %s", c.lower, c.upper, keys, c.want)
		}
	}
}

// TestSettle: after writes that fill several memtables, Settle returns
// with every table in the last level and no compaction running; with an
// ended context it returns at once.
func TestSettle(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Logger: quiet, MemTableSizeMiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateTopic("t", 1); err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte{'v'}, 1000)
	for i := range 40 {
		b := db.NewBatch()
		for range 500 {
			if err := b.Append("t", 0, &Entry{Value: val}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
		if i == 20 {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := db.Settle(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Settle with an ended context: %v", err)
			}
		}
	}
	if err := db.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := db.pdb.Metrics()
	if m.MemTable.Count != 1 || m.Compact.NumInProgress != 0 || m.Levels[6].TablesCount == 0 || m.Total().TablesCount != m.Levels[6].TablesCount {
		t.Fatalf("not settled: %d memtables, %d compactions running, %d of %d tables in the last level",
			m.MemTable.Count, m.Compact.NumInProgress, m.Levels[6].TablesCount, m.Total().TablesCount)
	}
}

// TestAppendRuns: appends to several partitions, interleaved, in runs of
// AppendN and single Appends, get each partition's offsets in order, and
// the producer's sequence numbers are reserved per run and checked at
// commit; a discarded batch reports each partition's first sequence.
func TestAppendRuns(t *testing.T) {
	db := openTest(t, vfs.NewMem())
	defer db.Close()
	db.CreateTopic("t", 3)
	epoch, _ := db.BumpEpoch("p")
	next := map[uint32]uint64{}
	reserve := func(topic string, part uint32, n uint64) uint64 {
		s := next[part]
		next[part] += n
		return s
	}
	type run struct {
		part uint32
		n    int // 1: Append, else AppendN
	}
	batches := [][]run{
		{{0, 3}, {1, 1}, {0, 2}, {2, 4}, {1, 5}},
		{{2, 1}, {2, 1}, {0, 1}},
	}
	want := map[uint32][]string{}
	for _, runs := range batches {
		b := db.NewBatch()
		b.SetProducer("p", epoch)
		b.SequenceAppends(reserve)
		for _, r := range runs {
			vals := make([]string, r.n)
			for i := range vals {
				vals[i] = fmt.Sprintf("p%d-%d", r.part, len(want[r.part])+i)
			}
			want[r.part] = append(want[r.part], vals...)
			var err error
			if r.n == 1 {
				err = b.Append("t", r.part, &Entry{Value: []byte(vals[0])})
			} else {
				var e Entry
				err = b.AppendN("t", r.part, r.n, func(i int) *Entry { e = Entry{Value: []byte(vals[i])}; return &e })
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	for part, vals := range want {
		ents, _, err := db.ReadLog("t", part, 0, 100, 1<<20, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != len(vals) || db.HighWater("t", part) != uint64(len(vals)) {
			t.Fatalf("partition %d: %d entries, high water %d, want %d", part, len(ents), db.HighWater("t", part), len(vals))
		}
		for i, e := range ents {
			if e.Offset != uint64(i) || string(e.Value) != vals[i] {
				t.Fatalf("partition %d entry %d: offset %d value %q, want %q", part, i, e.Offset, e.Value, vals[i])
			}
		}
		if ep, seq, found, _ := db.LastSequence("p", "t", part); !found || ep != epoch || seq != uint64(len(vals)-1) {
			t.Fatalf("partition %d: last sequence %d/%d (%v), want %d/%d", part, ep, seq, found, epoch, len(vals)-1)
		}
	}
	// A batch discarded before commit gives back what it reserved.
	b := db.NewBatch()
	b.SetProducer("p", epoch)
	b.SequenceAppends(reserve)
	b.AppendN("t", 1, 2, func(int) *Entry { return &Entry{} })
	b.Append("t", 0, &Entry{})
	b.AppendN("t", 1, 3, func(int) *Entry { return &Entry{} })
	first := map[uint32]uint64{}
	b.FirstSequences(func(topic string, part uint32, seq uint64) { first[part] = seq })
	b.Close()
	if len(first) != 2 || first[0] != uint64(len(want[0])) || first[1] != uint64(len(want[1])) {
		t.Fatalf("first sequences %v, want 0:%d 1:%d", first, len(want[0]), len(want[1]))
	}
	// A partition that does not exist reserves nothing.
	b = db.NewBatch()
	b.SetProducer("p", epoch)
	b.SequenceAppends(reserve)
	before := next[3]
	if err := b.AppendN("t", 3, 2, func(int) *Entry { return &Entry{} }); err == nil || next[3] != before {
		t.Fatalf("append to partition 3 of 3: %v, reserved %d", err, next[3]-before)
	}
	b.Close()
}

// TestExpireDedupRacesReRecording: an id re-recorded (a later expiry) while
// the cleanup expires its old entry keeps the new entry. The cleanup read
// the id's entry and then deleted it blindly: a re-recording committed in
// between was deleted, and the id's next duplicate passed.
func TestExpireDedupRacesReRecording(t *testing.T) {
	db := openTest(t, vfs.NewMem())
	defer db.Close()
	id := [16]byte{7}
	put := func(expiry int64) {
		b := db.NewBatch()
		if err := b.PutDedup("p", id, expiry); err != nil {
			t.Fatal(err)
		}
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2000 {
		put(500) // expired at 1000
		done := make(chan error, 1)
		go func() { _, err := db.ExpireDedup("p", 1000, 10); done <- err }()
		put(2000 + int64(round))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if e, found, err := db.GetDedup("p", id); err != nil || !found || e != 2000+int64(round) {
			t.Fatalf("round %d: the id re-recorded during the cleanup: expiry %d, found %v, %v", round, e, found, err)
		}
	}
}
