package runtime

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
)

// StdoutSink writes one value per line to standard output. Output cannot be
// taken back, so it is written in Prepare, before the decision: a crash
// between the two repeats those lines after restart (at-least-once).
type StdoutSink struct {
	w    *bufio.Writer
	next [][]byte
}

// NewStdoutSink writes to os.Stdout.
func NewStdoutSink() *StdoutSink { return newWriterSink(os.Stdout) }

func newWriterSink(w io.Writer) *StdoutSink { return &StdoutSink{w: bufio.NewWriterSize(w, 64<<10)} }

func (s *StdoutSink) Identity() string  { return "stdout" }
func (s *StdoutSink) Name() string      { return "sink" }
func (s *StdoutSink) ExactlyOnce() bool { return false }
func (s *StdoutSink) Close() error      { return s.w.Flush() }

// Stage implements Sink.
func (s *StdoutSink) Stage(_ *Txn, _ uint32, recs []OutRecord) error {
	for i := range recs {
		s.next = append(s.next, recs[i].Value)
	}
	return nil
}

// Prepare implements Participant.
func (s *StdoutSink) Prepare(context.Context, *Txn) error {
	for _, v := range s.next {
		s.w.Write(v)
		s.w.WriteByte('\n')
	}
	s.next = s.next[:0]
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

func (s *StdoutSink) Commit(context.Context, *Txn) error { return nil }
func (s *StdoutSink) Abort(context.Context, *Txn) error  { s.next = s.next[:0]; return nil }
