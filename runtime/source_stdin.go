package runtime

import (
	"context"
	"io"
	"os"
)

// stdinSource reads JSON Lines from standard input. It cannot be re-read, so
// a pipeline reading it is at-least-once: records in flight at a crash are
// lost to it, and records re-sent by the producer are processed again.
type stdinSource struct{ in io.Reader }

// newStdinSource reads os.Stdin.
func newStdinSource() *stdinSource { return &stdinSource{in: os.Stdin} }

func (s *stdinSource) Identity() string   { return "stdin" }
func (s *stdinSource) Partitions() uint32 { return 1 }
func (s *stdinSource) Resumable() bool    { return false }

// Open implements Source; from only numbers the records (stdin restarts at
// its own beginning).
func (s *stdinSource) Open(_ context.Context, _ uint32, from Position, _ bool) (Reader, error) {
	return &lineReader{name: "stdin", src: sourceHash("stdin"), r: s.in, final: true, pos: from}, nil
}
