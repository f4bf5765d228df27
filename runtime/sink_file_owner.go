package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The owner record of a file output: a small JSON file next to it
// (".NAME.helios-owner") naming the pipeline that writes it. It lives with
// the file, not in a data directory, so that a pipeline of another name, or
// of the same name in another data directory, sees it and is refused before
// it truncates anything. The decision record in the owner's data directory
// stays the truth about the committed length; the length here is
// informational (as of the owner's last start, first commit or clean stop).
// Decided says the owner has committed into the file: if its data directory
// then knows of no commit, the directory was deleted or replaced, and a
// rerun would write everything a second time.
//
// The record sits next to the file's real path (symbolic links resolved),
// so every name that reaches the file through links finds it.

type ownerRecord struct {
	DataDir  string    `json:"data_dir"`
	Pipeline string    `json:"pipeline"`
	Length   int64     `json:"committed_length"`
	Decided  bool      `json:"decided,omitempty"`
	Updated  time.Time `json:"updated"`
}

// ownerRecordPath is where the owner record of output file path lives.
func ownerRecordPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".helios-owner")
}

// checkOwner reads the owner record of path, an output of size bytes, and
// returns it when it names me. It returns an error wrapping ErrOutputOwned
// when the record names another pipeline, or names me as having committed
// into the file while I have no decision (neverDecided) and the file is not
// empty. A missing record means the file is free (never written by a
// pipeline, or handed over by deleting it).
func checkOwner(path string, me ownerRecord, size int64, neverDecided bool) (mine *ownerRecord, _ error) {
	if me.Pipeline == "" {
		return nil, nil // a sink outside any coordinator's pipeline (tests)
	}
	rp := ownerRecordPath(path)
	b, err := os.ReadFile(rp)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the owner record of output %s: %w", path, err)
	}
	var o ownerRecord
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("owner record %s of output %s is corrupt (%v): if no other pipeline writes %s, delete %s and rerun",
			rp, path, err, path, rp)
	}
	if o.DataDir != me.DataDir || o.Pipeline != me.Pipeline {
		return nil, fmt.Errorf("%w: %s is written by pipeline %q of data directory %s (%d bytes committed as of %s), not by pipeline %q of %s; "+
			"write to another output, or hand the file over: stop that pipeline and delete %s, then rerun",
			ErrOutputOwned, path, o.Pipeline, o.DataDir, o.Length, o.Updated.Format(time.RFC3339), me.Pipeline, me.DataDir, rp)
	}
	if o.Decided && neverDecided && size > 0 {
		return nil, fmt.Errorf("%w: %s holds outputs committed by pipeline %q (%d bytes as of %s), but its data directory %s has no record "+
			"of any commit (it was deleted or replaced): this run would write them all again; restore the data directory, "+
			"or start over: delete %s and %s, then rerun",
			ErrOutputOwned, path, o.Pipeline, o.Length, o.Updated.Format(time.RFC3339), o.DataDir, path, rp)
	}
	return &o, nil
}

// writeOwnerRecord replaces path's owner record atomically: a synced
// temporary file renamed over it, then the directory synced.
func writeOwnerRecord(path string, o ownerRecord) error {
	o.Updated = time.Now().UTC()
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	rp := ownerRecordPath(path)
	tmp := rp + ".tmp"
	werr := func(err error) error { return fmt.Errorf("write the owner record of output %s: %w", path, err) }
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return werr(err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return werr(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return werr(err)
	}
	if err := f.Close(); err != nil {
		return werr(err)
	}
	if err := os.Rename(tmp, rp); err != nil {
		return werr(err)
	}
	d, err := os.Open(filepath.Dir(rp))
	if err != nil {
		return werr(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return werr(err)
	}
	return nil
}
