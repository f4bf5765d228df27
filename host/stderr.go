package host

import (
	"bytes"
	"log/slog"
	"strings"
)

// tailWriter receives a guest's stdout and stderr: it logs each line and
// keeps the last bytes of the current batch so that a trap's error can quote
// the guest's panic message.
type tailWriter struct {
	logger *slog.Logger
	attrs  func() []any
	buf    []byte // bytes of the current batch, capped at tailMax
	line   []byte
}

const tailMax = 2048

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > tailMax {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-tailMax:]...)
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if w.logger != nil {
			w.logger.Debug("guest output: "+string(w.line[:i]), w.attrs()...)
		}
		w.line = w.line[i+1:]
	}
	if len(w.line) > tailMax {
		w.line = w.line[:0]
	}
	return len(p), nil
}

func (w *tailWriter) reset() { w.buf = w.buf[:0] }

func (w *tailWriter) tail() string {
	s := strings.TrimSpace(string(w.buf))
	if i := strings.Index(s, "\ngoroutine "); i > 0 { // keep a Go panic's message, drop the stack
		s = s[:i]
	}
	return s
}
