package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/heliosdb/helios-wasm/internal/crashpoint"
)

// FileSink appends one JSON Lines value per output to a file, exactly once.
//
// Prepare writes the transaction's bytes after the committed length and
// syncs them; the decision record stores the new committed length. Recover
// truncates anything past the last decided length, so bytes of a transaction
// that never reached its decision disappear.
type FileSink struct {
	path      string
	f         *os.File
	committed int64 // length covered by the last decision
	prepared  int64 // length after the prepared transaction
	buf       bytes.Buffer
}

type fileSinkData struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
}

// NewFileSink opens (creating) path for appending.
func NewFileSink(path string) (*FileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("output file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("output file: %w", err)
	}
	return &FileSink{path: path, f: f, committed: -1}, nil
}

func (s *FileSink) Identity() string  { return "file:" + s.path }
func (s *FileSink) Name() string      { return "sink" }
func (s *FileSink) ExactlyOnce() bool { return true }
func (s *FileSink) Close() error      { return s.f.Close() }

// ErrOutputModified means the output file no longer holds what was committed.
var ErrOutputModified = errors.New("output file modified outside helios-wasm")

// Recover implements Recoverer.
func (s *FileSink) Recover(_ context.Context, d *Decision) error {
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	var data fileSinkData
	if d == nil || d.Data["sink"] == nil {
		// Never committed: what is in the file predates the pipeline.
		s.committed = st.Size()
		return nil
	}
	if err := json.Unmarshal(d.Data["sink"], &data); err != nil {
		return fmt.Errorf("decision %d: sink data: %w", d.TxnID, err)
	}
	if data.Path != s.path {
		return fmt.Errorf("this pipeline writes to %s, not %s: keep --output, or choose another --name for a new pipeline", data.Path, s.path)
	}
	switch {
	case st.Size() < data.Length:
		return fmt.Errorf("%w: %s is %d bytes but %d were committed; restore the file, or start over with a new --name (or a new --data-dir)",
			ErrOutputModified, s.path, st.Size(), data.Length)
	case st.Size() > data.Length:
		// A transaction wrote and crashed before its decision: roll it back.
		if err := s.truncate(data.Length); err != nil {
			return err
		}
	}
	s.committed = data.Length
	return nil
}

func (s *FileSink) truncate(n int64) error {
	if err := s.f.Truncate(n); err != nil {
		return fmt.Errorf("truncate %s to its committed %d bytes: %w", s.path, n, err)
	}
	return s.f.Sync()
}

// Stage implements Sink.
func (s *FileSink) Stage(_ *Txn, _ uint32, recs []OutRecord) error {
	for i := range recs {
		v := recs[i].Value
		if bytes.IndexByte(v, '\n') >= 0 {
			return fmt.Errorf("output value %q contains a newline: the file sink writes one value per line", truncateForError(v))
		}
		s.buf.Write(v)
		s.buf.WriteByte('\n')
	}
	return nil
}

// Prepare implements Participant.
func (s *FileSink) Prepare(_ context.Context, txn *Txn) error {
	if s.committed < 0 {
		return errors.New("file sink: Prepare before Recover")
	}
	if s.buf.Len() > 0 {
		if _, err := s.f.WriteAt(s.buf.Bytes(), s.committed); err != nil {
			return fmt.Errorf("write %s: %w", s.path, err)
		}
		crashpoint.Hit(crashpoint.AfterSinkWrite)
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", s.path, err)
		}
	}
	s.prepared = s.committed + int64(s.buf.Len())
	return txn.SetData("sink", fileSinkData{Path: s.path, Length: s.prepared})
}

// Commit implements Participant.
func (s *FileSink) Commit(context.Context, *Txn) error {
	s.committed = s.prepared
	s.buf.Reset()
	return nil
}

// Abort implements Participant: the prepared bytes are cut off again.
func (s *FileSink) Abort(context.Context, *Txn) error {
	s.buf.Reset()
	if s.committed < 0 {
		return nil
	}
	return s.truncate(s.committed)
}

func truncateForError(b []byte) []byte {
	if len(b) > 80 {
		return append(b[:77:77], "..."...)
	}
	return b
}
