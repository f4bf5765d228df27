package runtime

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

// benchRecords is the input size of the end-to-end benchmarks;
// HELIOS_BENCH_RECORDS overrides it (make bench uses a 20-second run).
func benchRecords() int {
	if s := os.Getenv("HELIOS_BENCH_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err == nil {
			return n
		}
	}
	return 1_000_000
}

const benchValueSize = 100

func fillTopic(b *testing.B, db *storage.DB, topic string, parts uint32, n int) {
	b.Helper()
	if err := db.CreateTopic(topic, parts); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, benchValueSize)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	for i := 0; i < n; {
		batch := db.NewBatch()
		for j := 0; j < 10_000 && i < n; j, i = j+1, i+1 {
			e := storage.Entry{Value: val}
			binary.BigEndian.PutUint64(e.ID[8:], uint64(i+1))
			batch.Append(topic, uint32(i)%parts, &e)
		}
		if err := db.Commit(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPlugin(b *testing.B, which string, cfg host.Config) *host.Plugin {
	cfg.CacheDir, cfg.Logger = os.Getenv("HELIOS_TEST_CACHE"), quiet
	e, err := host.NewEngine(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close(context.Background()) })
	var wasm []byte
	switch which {
	case "wat-passthrough":
		src, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "host", "testdata", "passthrough.wat"))
		if err != nil {
			b.Fatal(err)
		}
		wasm = testutil.WAT(b, string(src))
	default:
		if wasm, err = os.ReadFile(testutil.GoPlugin(b, which)); err != nil {
			b.Fatal(err)
		}
	}
	p, err := e.Compile(context.Background(), which, wasm)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// benchRounds is how many pipeline and raw Pebble runs BenchmarkEndToEnd
// alternates; HELIOS_BENCH_ROUNDS overrides it.
func benchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("HELIOS_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// BenchmarkEndToEnd runs log:in -> operator -> log:out with exactly-once
// commits over benchRecords() 100-byte records, and raw synced Pebble
// writes of the same bytes (rawPebbleRun), alternately: benchRounds()
// rounds of a pipeline run then a raw run. It reports the medians,
// records/s and raw-records/s. A shared host's speed drifts over minutes
// (raw Pebble alone ranged 0.96-1.33M records/s in one afternoon), so a
// ratio of two runs taken minutes apart measures the drift too; runs taken
// side by side, several times, measure the pipeline.
func BenchmarkEndToEnd(b *testing.B) {
	n := benchRecords()
	for _, tc := range []struct {
		plugin string
		parts  uint32
	}{
		{"wat-passthrough", 2},
		{"wat-passthrough", 4},
		{"uppercase", 2},
	} {
		b.Run(fmt.Sprintf("plugin=%s/partitions=%d", tc.plugin, tc.parts), func(b *testing.B) {
			plugin := benchPlugin(b, tc.plugin, host.Config{})
			for range b.N {
				var pipe, raw []float64
				txns := 0
				for range benchRounds() {
					st := runLogToLog(b, plugin, tc.parts, n, FlowConfig{})
					pipe = append(pipe, float64(n)/st.Elapsed.Seconds())
					txns += int(st.Transactions)
					raw = append(raw, rawPebbleRun(b, n))
					b.Logf("round %d: pipeline %.0f, raw Pebble %.0f records/s (%.2fx)", len(pipe), pipe[len(pipe)-1], raw[len(raw)-1], pipe[len(pipe)-1]/raw[len(raw)-1])
				}
				b.ReportMetric(median(pipe), "records/s")
				b.ReportMetric(median(raw), "raw-records/s")
				b.ReportMetric(float64(txns)/float64(len(pipe)), "txns")
			}
		})
	}
}

// runLogToLog fills a topic of parts partitions with n records (untimed),
// then times one exactly-once log -> log run through plugin.
func runLogToLog(b *testing.B, plugin *host.Plugin, parts uint32, n int, flow FlowConfig) Stats {
	b.StopTimer()
	dir := b.TempDir()
	defer os.RemoveAll(dir) // after Close, as in rawPebbleRun
	db, err := storage.Open(dir, storage.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fillTopic(b, db, "in", parts, n)
	// The fill's flushes and compactions would run on into the timed run,
	// which the raw Pebble benchmark's empty directory does not have.
	if err := db.Settle(context.Background()); err != nil {
		b.Fatal(err)
	}
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", parts)
	p, err := New(Config{Name: "bench", DB: db, Plugin: plugin, Source: src, Sink: sink, BatchSize: 1000, Logger: quiet, Flow: flow})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	st, err := p.Run(context.Background())
	b.StopTimer()
	if err != nil || st.RecordsOut != int64(n) {
		b.Fatalf("%+v %v", st, err)
	}
	return st
}

// BenchmarkFlowControl measures the cost of flow control: the same
// end-to-end run with it on and off.
func BenchmarkFlowControl(b *testing.B) {
	n := min(benchRecords(), 2_000_000)
	plugin := benchPlugin(b, "wat-passthrough", host.Config{})
	for _, disabled := range []bool{false, true} {
		b.Run(fmt.Sprintf("disabled=%v", disabled), func(b *testing.B) {
			for range b.N {
				st := runLogToLog(b, plugin, 2, n, FlowConfig{Disabled: disabled})
				b.ReportMetric(float64(n)/st.Elapsed.Seconds(), "records/s")
			}
		})
	}
}

// BenchmarkSwapStall measures the processing stall at the swap boundary.
// Per partition and swap: "stall" is from the moment the worker switches
// versions to the start of its first batch on the new version (the switch
// itself; compilation and instantiation happened before); "before" is from
// its last batch on the old version to the switch, which includes the time
// the swap's preparation (instantiating on every partition, recording the
// version) took the CPU and disk away from processing. Go guests, batch 1000.
func BenchmarkSwapStall(b *testing.B) {
	upper, lower := benchPlugin(b, "uppercase", host.Config{}), benchPlugin(b, "lowercase", host.Config{})
	db, err := storage.Open(b.TempDir(), storage.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fillTopic(b, db, "in", 2, 4_000_000)
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", 2)
	p, err := New(Config{Name: "stall", DB: db, Plugin: upper, Source: src, Sink: sink, Follow: true, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	type span struct {
		gen        uint64
		start, end time.Time
	}
	var mu sync.Mutex
	spans := map[uint32][]span{}
	switches := map[uint32][]time.Time{}
	p.onBatch = func(part uint32, gen uint64, start, end time.Time) {
		mu.Lock()
		spans[part] = append(spans[part], span{gen, start, end})
		mu.Unlock()
	}
	p.onSwitch = func(part uint32, at time.Time) {
		mu.Lock()
		switches[part] = append(switches[part], at)
		mu.Unlock()
	}
	done := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); done <- err }()
	<-p.Ready()
	time.Sleep(200 * time.Millisecond)
	b.ResetTimer()
	for i := range b.N {
		next := lower
		if i%2 == 1 {
			next = upper
		}
		b.StopTimer()
		next = fresh(b, next) // Swap takes over the plugin it is given
		b.StartTimer()
		if _, err := p.Swap(context.Background(), next, nil); err != nil {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	p.Stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	var stalls, before, gaps []time.Duration
	for part, ss := range spans {
		sw := switches[part]
		for i := 1; i < len(ss); i++ {
			if ss[i].gen == ss[i-1].gen {
				gaps = append(gaps, ss[i].start.Sub(ss[i-1].end))
				continue
			}
			// The switch between these two batches.
			for _, at := range sw {
				if !at.Before(ss[i-1].end) && !at.After(ss[i].start) {
					before = append(before, at.Sub(ss[i-1].end))
					stalls = append(stalls, ss[i].start.Sub(at))
				}
			}
		}
	}
	if len(stalls) == 0 {
		b.Fatal("no swap boundary observed")
	}
	b.ReportMetric(float64(median(stalls).Microseconds()), "µs-stall-median")
	b.ReportMetric(float64(median(before).Microseconds()), "µs-before-switch-median")
	b.ReportMetric(float64(median(gaps).Microseconds()), "µs-gap-median")
}

// median returns the median of xs (zero for none); it sorts xs.
func median[T cmp.Ordered](xs []T) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkRawPebble writes the same bytes as BenchmarkEndToEnd's output
// (log entries of 100-byte values, 1000 per synced batch, plus an offset
// key per batch) straight to Pebble with the same options: the ceiling for
// the pipeline. The bytes matter: Pebble compresses its tables, and zeros
// cost less to compress and compact than the benchmark's records.
func BenchmarkRawPebble(b *testing.B) {
	for range b.N {
		b.ReportMetric(rawPebbleRun(b, benchRecords()), "records/s")
	}
}

// rawPebbleRun writes n records as BenchmarkRawPebble describes into a new
// directory, removed afterwards, and returns the records/s.
func rawPebbleRun(b *testing.B, n int) float64 {
	b.StopTimer()
	val := make([]byte, 0, benchValueSize+27)
	val = append(val, 1)                   // entry version
	val = append(val, make([]byte, 8)...)  // timestamp
	val = append(val, make([]byte, 16)...) // message id, numbered below
	val = append(val, 0, 0)                // key and headers lengths
	for i := range benchValueSize {
		val = append(val, 'a'+byte(i%26))
	}
	dir := b.TempDir()
	defer os.RemoveAll(dir) // after Close: alternated 20M-record runs would keep tens of GB until the benchmark ends
	// storage.Open's options.
	opts := &pebble.Options{Logger: pebbleQuiet{}, MemTableSize: 64 << 20, MemTableStopWritesThreshold: 4,
		L0CompactionThreshold: 4, L0StopWritesThreshold: 24, CompactionConcurrencyRange: func() (int, int) { return 1, 2 }}
	for i := range opts.Levels {
		opts.Levels[i].BlockSize, opts.Levels[i].IndexBlockSize = 32<<10, 256<<10
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	key := make([]byte, 0, 32)
	b.StartTimer()
	start := time.Now()
	for i := 0; i < n; {
		batch := db.NewBatch()
		for j := 0; j < 1000 && i < n; j, i = j+1, i+1 {
			key = binary.BigEndian.AppendUint64(append(key[:0], "Lout\x00\x00\x00\x00\x00"...), uint64(i))
			binary.BigEndian.PutUint64(val[17:25], uint64(i+1))
			batch.Set(key, val, nil)
		}
		batch.Set([]byte("Obench"), key, nil)
		if err := batch.Commit(pebble.Sync); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	return float64(n) / elapsed.Seconds()
}

type pebbleQuiet struct{}

func (pebbleQuiet) Infof(string, ...any)           {}
func (pebbleQuiet) Errorf(string, ...any)          {}
func (pebbleQuiet) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// BenchmarkSchemaMigration measures the schema step's cost per record in a
// pipeline (WAT passthrough, so the step is not hidden behind an operator)
// in the same run: without --schema over ~100-byte JSON records written
// with version 1; with --schema at version 2 over the same records (rules:
// an added field with a default, an integer promoted to float, a rename
// through an alias); and with --schema at version 3 of another subject
// over records written with its version 2, whose step to 3 is the Go cents
// migrator (WASM). It reports ns/record of each, and each schema case's
// ratio to the passthrough (target for the rules: at most 2).
func BenchmarkSchemaMigration(b *testing.B) {
	n := min(benchRecords(), 500_000)
	plugin := benchPlugin(b, "wat-passthrough", host.Config{})
	cents, err := os.ReadFile(testutil.Plugin(b, "go", "cents"))
	if err != nil {
		b.Fatal(err)
	}
	rules := []string{
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"integer"},{"name":"note","type":"string"}]}`,
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"total","type":"float","aliases":["amount"]},{"name":"note","type":"string"},{"name":"customer_id","type":"integer","default":0}]}`,
	}
	migrated := []string{
		`{"name":"payment","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"}]}`,
		`{"name":"payment","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`,
		`{"name":"payment","fields":[{"name":"order_id","type":"integer"},{"name":"amount_cents","type":"integer"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`,
	}
	const (
		plain = iota
		withRules
		withMigrator
	)
	run := func(mode int) time.Duration {
		b.StopTimer()
		db, err := storage.Open(b.TempDir(), storage.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		reg := schema.New(db).WithEngine(plugin.Engine())
		defer reg.Close(context.Background())
		subject, written := "orders", "orders/1"
		for _, v := range rules {
			if _, _, err := reg.Register(subject, []byte(v)); err != nil {
				b.Fatal(err)
			}
		}
		if mode == withMigrator {
			subject, written = "payments", "payments/2"
			for _, v := range migrated[:2] {
				if _, _, err := reg.Register(subject, []byte(v)); err != nil {
					b.Fatal(err)
				}
			}
			if _, _, err := reg.RegisterMigrator(context.Background(), subject, []byte(migrated[2]), cents, nil); err != nil {
				b.Fatal(err)
			}
		}
		reader, err := reg.Latest(subject)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.CreateTopic("in", 2); err != nil {
			b.Fatal(err)
		}
		headers := abi.AppendKVBlock(nil, []abi.Header{{Key: []byte(schema.Header), Value: []byte(written)}})
		for i := 0; i < n; {
			batch := db.NewBatch()
			for j := 0; j < 10_000 && i < n; j, i = j+1, i+1 {
				e := storage.Entry{Value: fmt.Appendf(nil, `{"order_id":%d,"amount":%d,"note":"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"}`, i, i%1000), Headers: headers}
				if mode == withMigrator {
					e.Value = fmt.Appendf(nil, `{"order_id":%d,"amount":%d.25,"customer_id":%d}`, i, i%1000, i%97)
				}
				binary.BigEndian.PutUint64(e.ID[8:], uint64(i+1))
				batch.Append("in", uint32(i)%2, &e)
			}
			if err := db.Commit(batch); err != nil {
				b.Fatal(err)
			}
		}
		src, _ := newLogSource(db, "in")
		sink, _ := newLogSink(db, "out", 2)
		cfg := Config{Name: "bench", DB: db, Plugin: plugin, Source: src, Sink: sink, BatchSize: 1000, Logger: quiet}
		if mode != plain {
			cfg.Schema = reader
		}
		p, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		st, err := p.Run(context.Background())
		b.StopTimer()
		if err != nil || st.RecordsOut != int64(n) {
			b.Fatalf("%+v %v", st, err)
		}
		return st.Elapsed
	}
	for range b.N {
		base, ruled, wasm := run(plain), run(withRules), run(withMigrator)
		b.ReportMetric(float64(base.Nanoseconds())/float64(n), "ns/record-passthrough")
		b.ReportMetric(float64(ruled.Nanoseconds())/float64(n), "ns/record-schema")
		b.ReportMetric(float64(ruled)/float64(base), "x-passthrough")
		b.ReportMetric(float64(wasm.Nanoseconds())/float64(n), "ns/record-wasm-migrator")
		b.ReportMetric(float64(wasm)/float64(base), "x-passthrough-wasm")
	}
}
