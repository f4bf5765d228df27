package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// stdoutSink writes one value per line to standard output. Output cannot be
// taken back, so it is written in Prepare, before the decision: a crash
// between the two repeats those lines after restart (at-least-once).
type stdoutSink struct {
	w *bufio.Writer
}

// newStdoutSink writes to os.Stdout.
func newStdoutSink() *stdoutSink { return newWriterSink(os.Stdout) }

func newWriterSink(w io.Writer) *stdoutSink { return &stdoutSink{w: bufio.NewWriterSize(w, 64<<10)} }

func (s *stdoutSink) Identity() string { return "stdout" }
func (s *stdoutSink) Close() error     { return s.w.Flush() }

// AtLeastOnce implements AtLeastOnceSink.
func (s *stdoutSink) AtLeastOnce() {}

// Prepare implements TxnSink: the lines are written (and visible) now.
func (s *stdoutSink) Prepare(_ context.Context, _ uint64, outs []Output) (json.RawMessage, error) {
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

func (s *stdoutSink) Commit(context.Context, uint64) error     { return nil }
func (s *stdoutSink) Abort(context.Context, uint64) error      { return nil }
func (s *stdoutSink) Recover(context.Context, Committed) error { return nil }
