package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// FileSource reads a JSON Lines file (one partition). Positions are byte
// offsets, so a restart resumes exactly after the last committed line.
type FileSource struct {
	path string
	id   string
}

// NewFileSource checks that path is a readable regular file.
func NewFileSource(path string) (*FileSource, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("input file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("input file %s is not a regular file", path)
	}
	return &FileSource{path: path, id: "file:" + path}, nil
}

func (s *FileSource) Identity() string   { return s.id }
func (s *FileSource) Partitions() uint32 { return 1 }
func (s *FileSource) Resumable() bool    { return true }

// Open implements Source.
func (s *FileSource) Open(_ context.Context, part uint32, from Position, follow bool) (Reader, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("input file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if from.Offset > st.Size() {
		f.Close()
		return nil, fmt.Errorf("input file %s is %d bytes, shorter than the committed position %d: it was replaced or truncated; "+
			"use a new --name to process it from the start", s.path, st.Size(), from.Offset)
	}
	if _, err := f.Seek(from.Offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	var r io.Reader = f
	if !follow {
		r = io.LimitReader(f, st.Size()-from.Offset) // the end as of start
	}
	return &fileReader{f: f, lineReader: lineReader{name: s.path, src: sourceHash(s.id), r: r, follow: follow,
		poll: 50 * time.Millisecond, partial: true, pos: from}}, nil
}

type fileReader struct {
	f *os.File
	lineReader
}

func (r *fileReader) Close() error { return r.f.Close() }
