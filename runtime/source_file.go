package runtime

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/storage"
)

// fileSource reads a JSON Lines file (one partition). Positions are byte
// offsets together with the identity of the file they are offsets in
// (storage.FileID: device, inode and a fingerprint of the first bytes), so a
// restart resumes exactly after the last committed line of the same file,
// and a replaced file is detected instead of being resumed mid-way.
type fileSource struct {
	path string
	id   string
}

// fingerprintMax is how many leading bytes identify a file's contents.
const fingerprintMax = 1024

// newFileSource checks that path is a readable regular file.
func newFileSource(path string) (*fileSource, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("input file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("input file %s is not a regular file", path)
	}
	return &fileSource{path: path, id: "file:" + path}, nil
}

func (s *fileSource) Identity() string   { return s.id }
func (s *fileSource) Partitions() uint32 { return 1 }
func (s *fileSource) Resumable() bool    { return true }

// Open implements Source. A committed position in another file than the
// one at the path now is an error wrapping ErrInputReplaced.
func (s *fileSource) Open(_ context.Context, part uint32, from Position, follow bool) (Reader, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("input file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if from.Offset > 0 {
		why, err := differs(f, from)
		if err == nil && why != "" {
			err = fmt.Errorf("%w: %s %s; the committed position (byte %d, line %d) belongs to the file that was there before",
				ErrInputReplaced, s.path, why, from.Offset, from.Ordinal)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	if from.File, err = fileIDOf(f, from.Offset); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(from.Offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	r := &fileReader{f: f, path: s.path}
	var in io.Reader = f
	if !follow {
		in = io.LimitReader(f, st.Size()-from.Offset) // the end as of start
	}
	r.lineReader = lineReader{name: s.path, src: sourceHash(s.id), r: in, follow: follow, poll: 50 * time.Millisecond, pos: from}
	if follow {
		r.lineReader.atEOF = r.checkRotation
	}
	return r, nil
}

// differs says how f is not the file pos is a place in ("" when it is). A
// position without a FileID (written before files were identified) only
// checks the length.
func differs(f *os.File, pos Position) (string, error) {
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() < pos.Offset {
		return fmt.Sprintf("is %d bytes, shorter than the committed position", st.Size()), nil
	}
	id := pos.File
	if id == (storage.FileID{}) {
		return "", nil
	}
	if dev, ino, ok := devIno(st); ok && (dev != id.Dev || ino != id.Ino) {
		return fmt.Sprintf("is another file (device %d inode %d, was device %d inode %d)", dev, ino, id.Dev, id.Ino), nil
	}
	fp, err := fingerprint(f, int64(id.FingerprintLen))
	if err != nil {
		return "", err
	}
	if fp != id.Fingerprint {
		return fmt.Sprintf("was rewritten (its first %d bytes changed)", id.FingerprintLen), nil
	}
	return "", nil
}

// fileIDOf identifies f, fingerprinting its first min(fingerprintMax, upTo)
// bytes (bytes already consumed, which appending never changes).
func fileIDOf(f *os.File, upTo int64) (storage.FileID, error) {
	st, err := f.Stat()
	if err != nil {
		return storage.FileID{}, err
	}
	var id storage.FileID
	id.Dev, id.Ino, _ = devIno(st)
	n := min(fingerprintMax, upTo, st.Size())
	id.FingerprintLen = uint32(n)
	id.Fingerprint, err = fingerprint(f, n)
	return id, err
}

func fingerprint(f *os.File, n int64) (uint64, error) {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF)) {
		return 0, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64(), nil
}

// fileReader reads one input file; while following, it survives rotation.
type fileReader struct {
	f    *os.File
	path string
	next *os.File // rename rotation: the new file, read once the old one is drained
	lineReader
}

// Read implements Reader; it extends the fingerprint of the position as
// the first bytes are consumed.
func (r *fileReader) Read(ctx context.Context, dst []abi.Record, max, maxBytes int) ([]abi.Record, Position, error) {
	dst, pos, err := r.lineReader.Read(ctx, dst, max, maxBytes)
	if id := r.pos.File; int64(id.FingerprintLen) < min(fingerprintMax, r.pos.Offset) {
		nid, ferr := fileIDOf(r.f, r.pos.Offset)
		if ferr != nil {
			return dst, pos, errors.Join(err, ferr)
		}
		if nid.Dev == id.Dev && nid.Ino == id.Ino {
			r.pos.File, pos.File = nid, nid
		}
	}
	return dst, pos, err
}

// checkRotation runs at each EOF while following. Rename rotation (the
// path now names another file): the old file is drained to its end, its
// last line counting even without a newline, then the new one is read from
// its start. Copytruncate (the same file, now shorter than what was read, or
// with other first bytes): reading restarts at its start.
func (r *fileReader) checkRotation() error {
	l := &r.lineReader
	if r.next != nil { // the old file is drained
		r.f.Close()
		r.f, r.next = r.next, nil
		id, err := fileIDOf(r.f, 0)
		if err != nil {
			return err
		}
		l.r, l.buf, l.start, l.final, l.skip = r.f, l.buf[:0], 0, false, nil
		l.pos = Position{File: id, Generation: l.pos.Generation + 1}
		return nil
	}
	st, err := os.Stat(r.path)
	if err != nil {
		return nil // renamed away, not yet recreated: keep waiting
	}
	cur, err := r.f.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(st, cur) {
		nf, err := os.Open(r.path)
		if err != nil {
			return nil // try again at the next EOF
		}
		r.next, l.final = nf, true
		return nil
	}
	read := l.pos.Offset + int64(len(l.buf)-l.start)
	if l.skip != nil {
		read += l.skip.n
	}
	why := ""
	if cur.Size() < read {
		why = fmt.Sprintf("shrank to %d bytes below the %d read", cur.Size(), read)
	} else if fp, err := fingerprint(r.f, int64(l.pos.File.FingerprintLen)); err != nil {
		return err
	} else if fp != l.pos.File.Fingerprint {
		why = "its first bytes changed"
	}
	if why == "" {
		return nil
	}
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	id, err := fileIDOf(r.f, 0)
	if err != nil {
		return err
	}
	l.buf, l.start, l.skip = l.buf[:0], 0, nil
	l.pos = Position{File: id, Generation: l.pos.Generation + 1}
	return nil
}

func (r *fileReader) Close() error {
	if r.next != nil {
		r.next.Close()
	}
	return r.f.Close()
}
