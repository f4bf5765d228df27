package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// markerName is the file that makes a directory a helios data directory. It
// is never empty (sync tools and cleanups that drop empty files keep it),
// and it is written with fsync before Pebble creates anything.
const markerName = "HELIOS"

// markerFormat is the marker's format version.
const markerFormat = 1

// ErrDamaged means the data directory is not usable as it is: Pebble's files
// are missing or corrupt, or it holds files that are not a helios store.
// Nothing has been written to it. The error says what is wrong and how to
// recover.
var ErrDamaged = errors.New("data directory is damaged or not a helios data directory")

type marker struct {
	format  int
	id      string
	created string
}

// readMarker reads dir's marker; found is false when there is none.
func readMarker(fs vfs.FS, dir string) (m marker, found bool, err error) {
	f, err := fs.Open(fs.PathJoin(dir, markerName))
	if errors.Is(err, os.ErrNotExist) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return marker{}, true, err
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "format":
			fmt.Sscan(v, &m.format)
		case "id":
			m.id = v
		case "created":
			m.created = v
		}
	}
	if m.format == 0 || m.id == "" {
		return m, true, fmt.Errorf("%w: %s: unreadable marker file %s (%d bytes); restore the directory from a backup",
			ErrDamaged, dir, markerName, len(b))
	}
	if m.format > markerFormat {
		return m, true, fmt.Errorf("%w: %s: marker format %d is newer than this release understands (%d); use a newer helios-wasm",
			ErrDamaged, dir, m.format, markerFormat)
	}
	return m, true, nil
}

// writeMarker writes dir's marker durably: a temporary file, fsync, rename,
// fsync of the directory.
func writeMarker(fs vfs.FS, dir string) error {
	body := fmt.Sprintf("helios-wasm data directory: do not delete (the store cannot be opened without it)\nformat %d\nid %s\ncreated %s\n",
		markerFormat, uuid.NewString(), time.Now().UTC().Format(time.RFC3339))
	tmp := fs.PathJoin(dir, markerName+".tmp")
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte(body)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, fs.PathJoin(dir, markerName)); err != nil {
		return err
	}
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// dirContents sorts the names in a data directory.
type dirContents struct {
	pebble  []string // Pebble's own files
	foreign []string // anything else (not our marker, socket or lock)
	// The files Pebble needs to find its store.
	manifestMarker, manifest, options bool
}

func (c dirContents) empty() bool { return len(c.pebble) == 0 && len(c.foreign) == 0 }

// missing names the files Pebble needs that are absent.
func (c dirContents) missing() []string {
	var m []string
	if !c.manifestMarker {
		m = append(m, "marker.manifest.* (an empty file naming the current MANIFEST)")
	}
	if !c.manifest {
		m = append(m, "MANIFEST-*")
	}
	if !c.options {
		m = append(m, "OPTIONS-*")
	}
	return m
}

func listDir(fs vfs.FS, dir string) (dirContents, error) {
	var c dirContents
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	sort.Strings(names)
	for _, n := range names {
		switch {
		case n == markerName, n == markerName+".tmp", n == "helios.sock", n == "LOCK":
		case strings.HasPrefix(n, "marker.manifest."):
			c.manifestMarker = true
			c.pebble = append(c.pebble, n)
		case n == "CURRENT": // Pebble's legacy pointer to the MANIFEST
			c.manifestMarker = true
			c.pebble = append(c.pebble, n)
		case strings.HasPrefix(n, "MANIFEST-"):
			c.manifest = true
			c.pebble = append(c.pebble, n)
		case strings.HasPrefix(n, "OPTIONS-"):
			c.options = true
			c.pebble = append(c.pebble, n)
		case strings.HasPrefix(n, "marker."), strings.HasSuffix(n, ".sst"), strings.HasSuffix(n, ".log"),
			strings.HasSuffix(n, ".blob"), strings.HasSuffix(n, ".dbtmp"):
			c.pebble = append(c.pebble, n)
		default:
			c.foreign = append(c.foreign, n)
		}
	}
	return c, nil
}

// recovery is the advice every ErrDamaged error ends with.
func recovery(dir string) string {
	return fmt.Sprintf("restore the directory from a backup; or, to start over deliberately (losing its offsets, state and log), move it aside (mv %s %s.damaged) and run again", dir, dir)
}

// checkDir decides, before Pebble touches dir, whether it may be opened:
// create is true for a new (empty) directory. It refuses a marked
// directory whose Pebble files are incomplete and a directory holding files
// that are not ours; an unmarked directory with Pebble files (written by a
// release before the marker) is left to adopt once Pebble has opened it.
func checkDir(fs vfs.FS, dir string) (c dirContents, marked, create bool, err error) {
	m, marked, err := readMarker(fs, dir)
	if err != nil {
		return c, marked, false, err
	}
	if c, err = listDir(fs, dir); err != nil {
		return c, marked, false, err
	}
	switch {
	case marked && len(c.missing()) > 0:
		return c, marked, false, fmt.Errorf("%w: %s is a helios data directory (id %s, created %s) but Pebble's files are missing: %s; %s",
			ErrDamaged, dir, m.id, m.created, strings.Join(c.missing(), ", "), recovery(dir))
	case !marked && c.empty():
		return c, false, true, nil
	case !marked && len(c.pebble) == 0:
		return c, false, false, fmt.Errorf("%w: %s is not empty and is not a helios data directory (it holds %s); not initialising over it: choose another directory, or empty it",
			ErrDamaged, dir, strings.Join(first(c.foreign, 5), ", "))
	case !marked && len(c.missing()) > 0:
		// Another process may be creating the store right now (Pebble
		// creates and locks LOCK first).
		if lock := fs.PathJoin(dir, "LOCK"); statOK(fs, lock) {
			if l, err := fs.Lock(lock); err != nil && isLocked(err) {
				return c, false, false, lockedError(dir)
			} else if err == nil {
				l.Close()
			}
		}
		return c, false, false, fmt.Errorf("%w: %s holds Pebble files (%s) but no %s marker, and Pebble's %s are missing; not initialising over them: %s",
			ErrDamaged, dir, strings.Join(first(c.pebble, 5), ", "), markerName, strings.Join(c.missing(), ", "), recovery(dir))
	}
	return c, marked, false, nil
}

func first(names []string, n int) []string {
	if len(names) <= n {
		return names
	}
	return append(names[:n:n], fmt.Sprintf("and %d more", len(names)-n))
}

func statOK(fs vfs.FS, name string) bool {
	_, err := fs.Stat(name)
	return err == nil
}
