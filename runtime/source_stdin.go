package runtime

import (
	"context"
	"io"
	"os"
)

// StdinSource reads JSON Lines from standard input. It cannot be re-read, so
// a pipeline reading it is at-least-once: records in flight at a crash are
// lost to it, and records re-sent by the producer are processed again.
type StdinSource struct{ in io.Reader }

// NewStdinSource reads os.Stdin.
func NewStdinSource() *StdinSource { return &StdinSource{in: os.Stdin} }

func (s *StdinSource) Identity() string   { return "stdin" }
func (s *StdinSource) Partitions() uint32 { return 1 }
func (s *StdinSource) Resumable() bool    { return false }

// Open implements Source; from only numbers the records (stdin restarts at
// its own beginning).
func (s *StdinSource) Open(_ context.Context, _ uint32, from Position, _ bool) (Reader, error) {
	return &lineReader{name: "stdin", src: sourceHash("stdin"), r: s.in, final: true, pos: from}, nil
}
