package runtime_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// Embed a pipeline: a JSON Lines file through a WebAssembly operator into
// another file, exactly once. Running it again resumes after the last
// commit, so it outputs nothing twice.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "helios-example-")
	check(err)
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	check(os.WriteFile(in, []byte("\"hello\"\n\"world\"\n"), 0o644))

	db, err := storage.Open(filepath.Join(dir, "data"), storage.Options{})
	check(err)
	defer db.Close()
	engine, err := host.NewEngine(ctx, host.Config{})
	check(err)
	defer engine.Close(ctx)
	wasm, err := os.ReadFile(runtime.ExampleOperator) // upper-cases each value
	check(err)
	plugin, err := engine.Compile(ctx, "uppercase", wasm)
	check(err)
	defer plugin.Close(ctx)

	for run := 1; run <= 2; run++ {
		src, err := runtime.ParseSource(ctx, "file:"+in, runtime.Endpoints{DB: db})
		check(err)
		sink, err := runtime.ParseSink(ctx, "file:"+out, runtime.Endpoints{DB: db}, src.Partitions())
		check(err)
		p, err := runtime.New(runtime.Config{Name: "example", DB: db, Plugin: plugin, Source: src, Sink: sink})
		check(err)
		stats, err := p.Run(ctx)
		check(err)
		check(sink.Close())
		fmt.Printf("run %d: %d records in, %d out\n", run, stats.RecordsIn, stats.RecordsOut)
	}
	b, err := os.ReadFile(out)
	check(err)
	fmt.Print(string(b))
	// Output:
	// run 1: 2 records in, 2 out
	// run 2: 0 records in, 0 out
	// "HELLO"
	// "WORLD"
}

// sliceSource is a Source of its own: one partition of values held in
// memory. A Position's Offset is the index of the next value, so the
// pipeline can resume it after the last commit.
type sliceSource []string

func (s sliceSource) Identity() string   { return "slice:example" }
func (s sliceSource) Partitions() uint32 { return 1 }
func (s sliceSource) Resumable() bool    { return true }
func (s sliceSource) Open(_ context.Context, _ uint32, from runtime.Position, _ bool) (runtime.Reader, error) {
	return &sliceReader{values: s, next: from.Offset}, nil
}

type sliceReader struct {
	values []string
	next   int64
}

func (r *sliceReader) Read(_ context.Context, dst []abi.Record, max, _ int) ([]abi.Record, runtime.Position, error) {
	if r.next >= int64(len(r.values)) {
		return dst, runtime.Position{Offset: r.next}, io.EOF
	}
	for ; r.next < int64(len(r.values)) && max > 0; r.next, max = r.next+1, max-1 {
		var id [16]byte // a stable message id per value: the same on every run
		binary.BigEndian.PutUint64(id[8:], uint64(r.next))
		dst = append(dst, abi.Record{Value: []byte(r.values[r.next]), Offset: r.next, ID: id})
	}
	return dst, runtime.Position{Offset: r.next}, nil
}

func (r *sliceReader) Close() error { return nil }

// Write a source of your own and run a pipeline from it into a topic of the
// embedded log.
func Example_customSource() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "helios-example-")
	check(err)
	defer os.RemoveAll(dir)
	db, err := storage.Open(filepath.Join(dir, "data"), storage.Options{})
	check(err)
	defer db.Close()
	engine, err := host.NewEngine(ctx, host.Config{})
	check(err)
	defer engine.Close(ctx)
	wasm, err := os.ReadFile(runtime.ExampleOperator)
	check(err)
	plugin, err := engine.Compile(ctx, "uppercase", wasm)
	check(err)
	defer plugin.Close(ctx)

	src := sliceSource{`"a"`, `"b"`, `"c"`}
	sink, err := runtime.ParseSink(ctx, "log:letters", runtime.Endpoints{DB: db}, src.Partitions())
	check(err)
	p, err := runtime.New(runtime.Config{Name: "letters", DB: db, Plugin: plugin, Source: src, Sink: sink})
	check(err)
	_, err = p.Run(ctx)
	check(err)

	entries, _, err := db.ReadLog("letters", 0, 0, 10, 1<<20, nil, nil)
	check(err)
	for _, e := range entries {
		fmt.Printf("%d %s\n", e.Offset, e.Value)
	}
	// Output:
	// 0 "A"
	// 1 "B"
	// 2 "C"
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
