package host

import (
	"io"
	"log/slog"
)

func newBufLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
