package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/linediff"
)

func pluginTestCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run a plugin on a fixture and compare its output with the expected lines",
		ArgsUsage: "PLUGIN.wasm",
		Description: "Feeds every non-blank line of --input to the plugin as one record (the line is the value, as `run --input file:`\n" +
			"does), through the real host with in-memory state, and compares the output with --expect: one line per output\n" +
			"value, and for a failed record a line\n\n" +
			"    # failed line N (code C): MESSAGE\n\n" +
			"A line that is not JSON never reaches the plugin and fails with code 110, as `run` dead-letters it.\n" +
			"Records that make the plugin trap or time out are isolated as in a pipeline (codes 100-106).\n" +
			"On a mismatch it prints a unified diff and exits 1. --update writes the actual output to --expect instead.\n\n" +
			"Example:\n  helios-wasm plugin test --input testdata/in.jsonl --expect testdata/out.jsonl --config field=user build/op.wasm",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Required: true, Usage: "fixture `FILE`: one record value per line"},
			&cli.StringFlag{Name: "expect", Aliases: []string{"e"}, Required: true, Usage: "expected output `FILE`"},
			configFlag(),
			&cli.IntFlag{Name: "batch-size", Value: 1000, Usage: "records per operator call"},
			&cli.BoolFlag{Name: "update", Usage: "write the actual output to --expect instead of comparing"},
		}, engineFlags()...),
		Action: pluginTest,
	}
}

func pluginTest(c *cli.Context) error {
	if err := requireArgs(c, 1, "one PLUGIN.wasm"); err != nil {
		return err
	}
	if c.Int("batch-size") < 1 {
		return usagef("--batch-size must be at least 1")
	}
	cfg, err := parseConfig(c.StringSlice("config"))
	if err != nil {
		return err
	}
	in, err := os.ReadFile(c.String("input"))
	if err != nil {
		return usagef("--input: %v", err)
	}
	return withPluginArg(c, func(ctx context.Context, p *host.Plugin) error {
		got, stats, err := runFixture(ctx, p, cfg, in, c.Int("batch-size"))
		if err != nil {
			return err
		}
		return compareFixture(p.Name(), c.String("expect"), c.Bool("update"), got, stats)
	})
}

// compareFixture compares the output lines with the expectation file, or
// writes them to it with update.
func compareFixture(plugin, expectPath string, update bool, got []string, stats fixtureStats) error {
	if update {
		if err := os.WriteFile(expectPath, []byte(joinLines(got)), 0o644); err != nil {
			return err
		}
		fmt.Printf("wrote %d lines to %s (%s)\n", len(got), expectPath, stats)
		return nil
	}
	want, err := os.ReadFile(expectPath)
	if err != nil {
		return usagef("--expect: %v (create it with --update)", err)
	}
	d := linediff.Unified(expectPath+" (expected)", "actual output", splitLines(want), got, 3)
	if d == "" {
		fmt.Printf("ok  %s: %s, output matches %s\n", plugin, stats, expectPath)
		return nil
	}
	fmt.Print(d)
	return fmt.Errorf("plugin test: %s's output differs from %s (diff above; --update accepts the actual output)", plugin, expectPath)
}

type fixtureStats struct{ in, out, failed int }

func (s fixtureStats) String() string {
	return fmt.Sprintf("%d records in, %d out, %d failed", s.in, s.out, s.failed)
}

// fixtureRecord remembers which input line a record came from.
type fixtureRecord struct {
	rec  abi.Record
	line int
	idx  int    // position among the fixture's records, for the output order
	bad  string // why the line is not a record (not JSON); empty for records
}

// runFixture runs the plugin over the non-blank lines of in and renders
// its output as lines.
func runFixture(ctx context.Context, p *host.Plugin, cfg []abi.Header, in []byte, batchSize int) ([]string, fixtureStats, error) {
	var recs []fixtureRecord
	sc := bufio.NewScanner(bytes.NewReader(in))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var offset int64
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSuffix(sc.Bytes(), []byte{'\r'})
		if len(bytes.TrimSpace(line)) > 0 {
			r := abi.Record{Value: bytes.Clone(line), Offset: offset}
			binary.BigEndian.PutUint64(r.ID[8:], uint64(offset)) // stable per line, like run's position ids
			fr := fixtureRecord{rec: r, line: n, idx: len(recs)}
			if !json.Valid(line) {
				// As `run` does: the line never reaches the plugin and is
				// dead-lettered with code 110.
				var v any
				fr.bad = fmt.Sprintf("not valid JSON (%v)", json.Unmarshal(line, &v))
			}
			recs = append(recs, fr)
		}
		offset += int64(len(sc.Bytes())) + 1
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fixtureStats{}, usagef("--input: %v", err)
	}
	inst, err := p.NewInstance(ctx, host.InstanceConfig{Config: cfg})
	if err != nil {
		return nil, fixtureStats{}, err
	}
	defer inst.Close(ctx)
	st := fixtureState{committed: map[string][]byte{}}
	stats := fixtureStats{in: len(recs)}
	lines := make([][]string, len(recs)) // output lines per fixture record
	fail := func(r fixtureRecord, code uint32, msg string) {
		stats.failed++
		msg = strings.ReplaceAll(msg, "\n", " ") // one line per failure
		lines[r.idx] = append(lines[r.idx], fmt.Sprintf("# failed line %d (code %d): %s", r.line, code, msg))
	}
	render := func(part []fixtureRecord, ents []abi.Entry) {
		for _, en := range ents {
			r := part[en.InputIndex]
			if en.Kind == abi.EntryKindFailed {
				fail(r, en.Code, string(en.Value))
				continue
			}
			stats.out++
			lines[r.idx] = append(lines[r.idx], renderValue(en.Value))
		}
	}
	good := make([]fixtureRecord, 0, len(recs))
	for _, r := range recs {
		if r.bad != "" {
			fail(r, abi.FailMalformedInput, r.bad)
		} else {
			good = append(good, r)
		}
	}
	for start := 0; start < len(good); start += batchSize {
		part := good[start:min(start+batchSize, len(good))]
		ents, err := st.process(ctx, inst, part)
		if err == nil {
			render(part, ents)
			continue
		}
		if _, isolate := host.RecordFailCode(err); !isolate {
			return nil, stats, fmt.Errorf("records of lines %d-%d: %w", part[0].line, part[len(part)-1].line, err)
		}
		// Like the pipeline: run the records one by one to find the ones
		// that make the plugin fail (the pipeline dead-letters them).
		for i := range part {
			one := part[i : i+1]
			ents, err := st.process(ctx, inst, one)
			if err != nil {
				code, isolate := host.RecordFailCode(err)
				if !isolate {
					return nil, stats, fmt.Errorf("record of line %d: %w", one[0].line, err)
				}
				ents = []abi.Entry{{Kind: abi.EntryKindFailed, Code: code, Value: []byte(isolatedMessage(err))}}
			}
			render(one, ents)
		}
	}
	var out []string
	for _, l := range lines {
		out = append(out, l...)
	}
	return out, stats, nil
}

// isolatedMessage describes a record that made the plugin fail in one line
// that does not depend on batching.
func isolatedMessage(err error) string {
	var pe *host.PluginError
	if errors.As(err, &pe) {
		return pe.Brief()
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// fixtureState is the operator state of a fixture run: a batch's writes
// are kept apart and kept only when the batch succeeds, as in a pipeline.
type fixtureState struct {
	committed map[string][]byte
	batch     map[string]*[]byte // nil value: deleted
}

func (s *fixtureState) process(ctx context.Context, inst *host.Instance, part []fixtureRecord) ([]abi.Entry, error) {
	s.batch = map[string]*[]byte{}
	recs := make([]abi.Record, len(part))
	for i, r := range part {
		recs[i] = r.rec
	}
	ents, err := inst.Process(ctx, recs, s)
	if err != nil {
		return nil, err
	}
	for k, v := range s.batch {
		if v == nil {
			delete(s.committed, k)
		} else {
			s.committed[k] = *v
		}
	}
	return ents, nil
}

func (s *fixtureState) Get(k []byte) ([]byte, bool, error) {
	if v, ok := s.batch[string(k)]; ok {
		if v == nil {
			return nil, false, nil
		}
		return *v, true, nil
	}
	v, ok := s.committed[string(k)]
	return v, ok, nil
}

func (s *fixtureState) Put(k, v []byte) error {
	c := bytes.Clone(v)
	if c == nil {
		c = []byte{}
	}
	s.batch[string(k)] = &c
	return nil
}

func (s *fixtureState) Delete(k []byte) error {
	s.batch[string(k)] = nil
	return nil
}

// renderValue writes a value as one line; one holding a newline is quoted.
func renderValue(v []byte) string {
	if bytes.IndexByte(v, '\n') >= 0 {
		return fmt.Sprintf("# value %q", v)
	}
	return string(v)
}

func splitLines(b []byte) []string {
	s := strings.TrimSuffix(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func joinLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}
