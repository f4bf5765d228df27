package logio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/heliosdb/helios-wasm/storage"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testDB(t *testing.T, parts uint32) (*storage.DB, storage.TopicInfo) {
	t.Helper()
	db, err := storage.Open("db", storage.Options{Logger: quiet, FS: vfs.NewMem(), OnFatal: func(err error) { t.Errorf("fatal: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateTopic("t", parts); err != nil {
		t.Fatal(err)
	}
	ti, _ := db.Topic("t")
	return db, ti
}

func values(t *testing.T, db *storage.DB) []string {
	t.Helper()
	var b bytes.Buffer
	if err := Consume(db, "t", -1, 0, &b); err != nil {
		t.Fatal(err)
	}
	return strings.Fields(b.String())
}

func entries(t *testing.T, db *storage.DB) []storage.Entry {
	t.Helper()
	es, _, err := db.ReadLog("t", 0, 0, 1<<20, 1<<30, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestProduceCounts: what Run reports committed is exactly what is in the
// topic, on success and on every kind of bad line, with and without skip.
func TestProduceCounts(t *testing.T) {
	for _, tt := range []struct {
		name       string
		in         string
		opts       ProduceOptions
		records    int64
		lines      int64
		badLine    int64 // 0: no error
		wantValues string
	}{
		{"all", "1\n2\n\n3\n", ProduceOptions{}, 3, 4, 0, "1 2 3"},
		{"no final newline", "1\r\n2", ProduceOptions{}, 2, 2, 0, "1 2"},
		{"skip", "1\n2\n3\n4\n", ProduceOptions{Skip: 2}, 2, 4, 0, "3 4"},
		{"skip past the end", "1\n2\n", ProduceOptions{Skip: 5}, 0, 2, 0, ""},
		{"skip a bad line", "{\n2\n", ProduceOptions{Skip: 1}, 1, 2, 0, "2"},
		{"bad JSON", "1\n2\n{\n4\n", ProduceOptions{BatchSize: 1}, 2, 2, 3, "1 2"},
		{"bad JSON mid-batch", "1\n2\n{\n4\n", ProduceOptions{BatchSize: 100}, 2, 2, 3, "1 2"},
		{"too long", "1\n2\n\"" + strings.Repeat("x", 20) + "\"\n4\n", ProduceOptions{MaxRecordBytes: 10}, 2, 2, 3, "1 2"},
		{"at the limit", "\"12345678\"\n", ProduceOptions{MaxRecordBytes: 10}, 1, 1, 0, `"12345678"`},
		{"too long without newline", "1\n" + strings.Repeat("7", 11), ProduceOptions{MaxRecordBytes: 10}, 1, 1, 2, "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, ti := testDB(t, 1)
			p, err := NewProducer(db, ti, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			n, err := p.Run(strings.NewReader(tt.in))
			var bad *BadLineError
			switch {
			case tt.badLine == 0 && err != nil:
				t.Fatalf("error %v", err)
			case tt.badLine != 0 && (!errors.As(err, &bad) || bad.Line != tt.badLine):
				t.Fatalf("error %v, want a bad line %d", err, tt.badLine)
			}
			if n != (Produced{tt.records, tt.lines}) || p.Committed() != n {
				t.Fatalf("reported %+v (Committed %+v), want %d records, lines 1..%d", n, p.Committed(), tt.records, tt.lines)
			}
			if got := strings.Join(values(t, db), " "); got != tt.wantValues {
				t.Fatalf("topic holds %q, want %q", got, tt.wantValues)
			}
		})
	}
}

// TestProduceIDs: content and line ids are the same in a rerun (with or
// without skip); random ids are not.
func TestProduceIDs(t *testing.T) {
	in := "{\"a\":1}\n{\"a\":2}\n{\"a\":1}\n"
	idsOf := func(opts ProduceOptions) [][16]byte {
		db, ti := testDB(t, 1)
		p, _ := NewProducer(db, ti, opts)
		if _, err := p.Run(strings.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		var ids [][16]byte
		for _, e := range entries(t, db) {
			ids = append(ids, e.ID)
		}
		return ids
	}
	content := idsOf(ProduceOptions{IDFrom: IDContent})
	if content[0] != content[2] || content[0] == content[1] {
		t.Fatalf("content ids %x: equal lines must share an id, others not", content)
	}
	line := idsOf(ProduceOptions{IDFrom: IDLine})
	if line[0] == line[2] {
		t.Fatal("line ids of lines 1 and 3 are equal")
	}
	if again := idsOf(ProduceOptions{IDFrom: IDLine, Skip: 1}); again[0] != line[1] || again[1] != line[2] {
		t.Fatal("a rerun with --skip gives line 2 and 3 other ids")
	}
	if other := idsOf(ProduceOptions{IDFrom: IDLine, IDScope: "other.jsonl"}); other[0] == line[0] {
		t.Fatal("line ids do not depend on the scope")
	}
	if r1, r2 := idsOf(ProduceOptions{}), idsOf(ProduceOptions{}); r1[0] == r2[0] {
		t.Fatal("random ids repeat")
	}
	if _, err := NewProducer(nil, storage.TopicInfo{}, ProduceOptions{IDFrom: "uuid"}); err == nil {
		t.Fatal("unknown IDFrom accepted")
	}
}

// TestProduceStop: Stop while Run waits for input commits the staged
// records and reports them; Run then returns ErrStopped.
func TestProduceStop(t *testing.T) {
	db, ti := testDB(t, 2)
	p, _ := NewProducer(db, ti, ProduceOptions{BatchSize: 1000})
	pr, pw := io.Pipe()
	type result struct {
		n   Produced
		err error
	}
	done := make(chan result, 1)
	go func() { n, err := p.Run(pr); done <- result{n, err} }()
	for i := 1; i <= 2500; i++ {
		fmt.Fprintf(pw, "%d\n", i)
	}
	fmt.Fprint(pw, "2501") // a partial line: not done
	time.Sleep(50 * time.Millisecond)
	n, err := p.Stop()
	if err != nil || n != (Produced{2500, 2500}) {
		t.Fatalf("Stop: %+v %v, want 2500 records, lines 1..2500", n, err)
	}
	pw.Write([]byte("\n2502\n"))
	pw.Close()
	if r := <-done; !errors.Is(r.err, ErrStopped) || r.n != n {
		t.Fatalf("Run after Stop: %+v %v", r.n, r.err)
	}
	if got := len(values(t, db)); got != 2500 {
		t.Fatalf("%d records in the topic, 2500 reported", got)
	}
}

// endless yields 'x' forever and counts what was read.
type endless struct{ read int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.read += len(p)
	return len(p), nil
}

// TestProduceEndlessLine: a line without end is refused once it passes the
// limit, having read no more than the limit plus one read buffer.
func TestProduceEndlessLine(t *testing.T) {
	db, ti := testDB(t, 1)
	const limit = 4 << 20
	p, _ := NewProducer(db, ti, ProduceOptions{MaxRecordBytes: limit})
	src := &endless{}
	n, err := p.Run(io.MultiReader(strings.NewReader("1\n"), src))
	var bad *BadLineError
	if !errors.As(err, &bad) || bad.Line != 2 || !strings.Contains(err.Error(), "longer than 4194304 bytes") {
		t.Fatalf("error %v, want line 2 too long", err)
	}
	if n != (Produced{1, 1}) {
		t.Fatalf("reported %+v, want 1 record, line 1", n)
	}
	if src.read > limit+2+1<<20 {
		t.Fatalf("read %d bytes of the endless line: more than the limit plus one read buffer", src.read)
	}
}

// lineReader yields one line per Read and calls at(n) before the nth.
type lineReader struct {
	n, total int
	at       func(n int)
}

func (r *lineReader) Read(p []byte) (int, error) {
	if r.n == r.total {
		return 0, io.EOF
	}
	r.n++
	r.at(r.n)
	return copy(p, fmt.Sprintf("%d\n", r.n)), nil
}

// TestProduceStorageFailure: when the disk fails (ENOSPC) mid-stream, the
// commit's error ends Run, and what Run reports committed is exactly what
// survives a crash.
func TestProduceStorageFailure(t *testing.T) {
	mem := vfs.NewCrashableMem()
	enospc := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return syscall.ENOSPC
		}
		return nil
	})}
	db, err := storage.Open("db", storage.Options{Logger: quiet, FS: errorfs.Wrap(mem, enospc)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.CreateTopic("t", 1)
	ti, _ := db.Topic("t")
	p, _ := NewProducer(db, ti, ProduceOptions{BatchSize: 10})
	done := make(chan error, 1)
	var got Produced
	go func() {
		var err error
		got, err = p.Run(&lineReader{total: 100, at: func(n int) {
			if n == 26 {
				enospc.On() // the disk fills while lines 21..30 are staged
			}
		}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run succeeded on a full disk")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the storage failure")
	}
	if got != (Produced{20, 20}) || p.Committed() != got {
		t.Fatalf("Run reported %+v (Committed %+v), want 20 records, lines 1..20", got, p.Committed())
	}
	crashed, err := storage.Open("db", storage.Options{Logger: quiet, FS: mem.CrashClone(vfs.CrashCloneCfg{}), OnFatal: func(err error) { t.Errorf("fatal: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer crashed.Close()
	if n := len(values(t, crashed)); n != 20 {
		t.Fatalf("%d records survive, %d reported", n, got.Records)
	}
}
