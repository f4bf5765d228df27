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

// fileSink appends one JSON Lines value per output to a file, exactly once.
//
// Prepare writes the transaction's bytes after the committed length and
// syncs them; the decision record stores the new committed length. Recover
// truncates anything past the last decided length, so bytes of a transaction
// that never reached its decision disappear.
//
// The output belongs to one pipeline: while a sink is open it holds an
// advisory lock on the file (a second writer, in this process or another,
// is refused), and Recover checks and writes an owner record next to it
// (see ownerRecord), so that a pipeline of another name or data directory
// never truncates what this one committed.
type fileSink struct {
	path      string
	real      string // path with symbolic links resolved: where the owner record lives
	f         *os.File
	owner     ownerRecord  // who may write; set by Recover
	recovered int64        // committed length at Recover: this run's commits append past it
	committed int64        // length covered by the last decision
	prepared  int64        // length after the prepared transaction
	buf       bytes.Buffer // scratch for Prepare
}

type fileSinkData struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
}

// newFileSink opens (creating) path for appending and locks it. A path that
// exists and is not a regular file (a device such as /dev/null, a pipe) is
// refused: recovery must be able to truncate the output to its committed
// length.
func newFileSink(path string) (*fileSink, error) {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("output %s is not a regular file (%s): the file sink cuts its output back to the committed length on recovery, "+
			"which only a regular file allows; to discard outputs, write to stdout (output -) and redirect it to /dev/null", path, st.Mode().Type())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("output file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("output file: %w", err)
	}
	if busy, err := lockExclusive(f); busy || err != nil {
		f.Close()
		if busy {
			return nil, fmt.Errorf("%w: %s is open for writing by another pipeline (in this process or another); "+
				"stop it first, or write to another output", ErrOutputBusy, path)
		}
		return nil, fmt.Errorf("lock output %s: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("output file: %w", err)
	}
	return &fileSink{path: path, real: real, f: f, committed: -1}, nil
}

func (s *fileSink) Identity() string { return "file:" + s.path }

// Close records the committed length in the owner record and releases the
// file.
func (s *fileSink) Close() error {
	var err error
	if s.committed >= 0 && s.owner.Pipeline != "" {
		s.owner.Length = s.committed
		s.owner.Decided = s.owner.Decided || s.committed > s.recovered
		err = writeOwnerRecord(s.real, s.owner)
	}
	return errors.Join(err, s.f.Close())
}

// Recover implements TxnSink. It refuses an output that another pipeline
// owns, reconciles the file with the last decision, and records this
// pipeline as the owner. A file with several hard links is refused unless
// its record already names this pipeline: the record sits next to one
// name, where a pipeline writing another name would not see it.
func (s *fileSink) Recover(_ context.Context, last Committed) error {
	s.owner = ownerRecord{DataDir: last.DataDir, Pipeline: last.Pipeline}
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("output %s: %w", s.path, err)
	}
	mine, err := checkOwner(s.real, s.owner, st.Size(), last.Data == nil)
	if err != nil {
		return err
	}
	if n := linkCount(st); n > 1 && s.owner.Pipeline != "" && mine == nil {
		return fmt.Errorf("%w: %s has %d names (hard links): the file sink records who writes an output next to its name, "+
			"where a pipeline writing it under another name would not see it; write to a file with a single name",
			ErrOutputOwned, s.path, n)
	}
	if err := s.recoverLength(last, st); err != nil {
		return err
	}
	// Whether this pipeline has committed into the file survives a restart
	// only in the record (a decision may cover just bytes that predate it).
	s.owner.Decided = mine != nil && mine.Decided && last.Data != nil
	s.recovered, s.owner.Length = s.committed, s.committed
	return writeOwnerRecord(s.real, s.owner)
}

func (s *fileSink) recoverLength(last Committed, st os.FileInfo) error {
	var data fileSinkData
	if last.Data == nil {
		// Never committed: what is in the file predates the pipeline.
		s.committed = st.Size()
		return nil
	}
	if err := json.Unmarshal(last.Data, &data); err != nil {
		return fmt.Errorf("decision %d: sink data: %w", last.Txn, err)
	}
	if data.Path != s.path {
		was := data.Path
		if was == "" {
			was = "another output (not a file)"
		}
		return fmt.Errorf("this pipeline writes to %s, not %s: keep its output, or give a new pipeline its own name", was, s.path)
	}
	switch {
	case st.Size() < data.Length:
		return fmt.Errorf("%w: %s is %d bytes but %d were committed; restore the file, or start over with a new pipeline name (or a new data directory)",
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

func (s *fileSink) truncate(n int64) error {
	if err := s.f.Truncate(n); err != nil {
		return fmt.Errorf("truncate %s to its committed %d bytes: %w", s.path, n, err)
	}
	return s.f.Sync()
}

// Accepts implements RecordAcceptor: a value containing a newline would
// become two lines (and break every later read of the file).
func (s *fileSink) Accepts(o OutRecord) error {
	if bytes.IndexByte(o.Value, '\n') >= 0 {
		return fmt.Errorf("output value %q contains a newline: the file sink writes one value per line", truncateForError(o.Value))
	}
	return nil
}

// Prepare implements TxnSink: the outputs are written after the committed
// length and synced. The pipeline has already routed outputs that Accepts
// refuses to the dead-letter queue; this is the last guard.
func (s *fileSink) Prepare(_ context.Context, _ uint64, outs []Output) (json.RawMessage, error) {
	if s.committed < 0 {
		return nil, errors.New("file sink: Prepare before Recover")
	}
	s.buf.Reset()
	for _, o := range outs {
		for i := range o.Records {
			if err := s.Accepts(o.Records[i]); err != nil {
				return nil, err
			}
			s.buf.Write(o.Records[i].Value)
			s.buf.WriteByte('\n')
		}
	}
	if s.buf.Len() > 0 {
		if _, err := s.f.WriteAt(s.buf.Bytes(), s.committed); err != nil {
			return nil, fmt.Errorf("write %s: %w", s.path, err)
		}
		crashpoint.Hit(crashpoint.AfterSinkWrite)
		if err := s.f.Sync(); err != nil {
			return nil, fmt.Errorf("sync %s: %w", s.path, err)
		}
	}
	s.prepared = s.committed + int64(s.buf.Len())
	return json.Marshal(fileSinkData{Path: s.path, Length: s.prepared})
}

// Commit implements TxnSink. The first commit that appends to the file is
// noted in the owner record (see ownerRecord.Decided). The record is a
// safeguard, not the commit: a failed write is tried again at the next
// commit and at Close, and never holds the committer back.
func (s *fileSink) Commit(context.Context, uint64) error {
	s.committed = s.prepared
	if s.owner.Decided || s.owner.Pipeline == "" || s.committed <= s.recovered {
		return nil
	}
	o := s.owner
	o.Decided, o.Length = true, s.committed
	if writeOwnerRecord(s.real, o) == nil {
		s.owner.Decided = true
	}
	return nil
}

// Abort implements TxnSink: the prepared bytes are cut off again.
func (s *fileSink) Abort(context.Context, uint64) error {
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
