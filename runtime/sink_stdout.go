package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// StdoutSink writes one value per line to standard output. Output cannot be
// taken back, so it is written in Prepare, before the decision: a crash
// between the two repeats those lines after restart (at-least-once).
type StdoutSink struct {
	w *bufio.Writer
}

// NewStdoutSink writes to os.Stdout.
func NewStdoutSink() *StdoutSink { return newWriterSink(os.Stdout) }

func newWriterSink(w io.Writer) *StdoutSink { return &StdoutSink{w: bufio.NewWriterSize(w, 64<<10)} }

func (s *StdoutSink) Identity() string { return "stdout" }
func (s *StdoutSink) Close() error     { return s.w.Flush() }

// AtLeastOnce implements AtLeastOnceSink.
func (s *StdoutSink) AtLeastOnce() {}

// Prepare implements TxnSink: the lines are written (and visible) now.
func (s *StdoutSink) Prepare(_ context.Context, _ uint64, outs []Output) (json.RawMessage, error) {
	for _, o := range outs {
		for i := range o.Records {
			s.w.Write(o.Records[i].Value)
			s.w.WriteByte('\n')
		}
	}
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("write stdout: %w", err)
	}
	return nil, nil
}

func (s *StdoutSink) Commit(context.Context, uint64) error     { return nil }
func (s *StdoutSink) Abort(context.Context, uint64) error      { return nil }
func (s *StdoutSink) Recover(context.Context, Committed) error { return nil }
