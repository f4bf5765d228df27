package schema

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/storage"
)

func openRegistry(t *testing.T) (*Registry, *storage.DB) {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "data"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(db), db
}

// TestCompatibilityMatrix runs testdata/compat.txt: every mode over a table
// of changes, with verdicts written from the Confluent rules.
func TestCompatibilityMatrix(t *testing.T) {
	f, err := os.Open("testdata/compat.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	schemas := map[string]string{}
	sc := bufio.NewScanner(f)
	var chain []string
	lineNo, checked := 0, 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "schema "):
			name, text, _ := strings.Cut(strings.TrimPrefix(line, "schema "), " ")
			schemas[name] = text
		case strings.HasPrefix(line, "check "):
			chain = strings.Split(strings.TrimPrefix(line, "check "), ",")
		default:
			for _, verdict := range strings.Fields(line) {
				mode, want, _ := strings.Cut(verdict, "=")
				runCase(t, lineNo, schemas, chain, Mode(mode), want)
				checked++
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d verdicts read: the table did not parse", checked)
	}
}

func runCase(t *testing.T, line int, schemas map[string]string, chain []string, mode Mode, want string) {
	t.Run(strings.Join(chain, ">")+"/"+string(mode), func(t *testing.T) {
		r, _ := openRegistry(t)
		if err := r.SetMode("", None); err != nil {
			t.Fatal(err)
		}
		for _, name := range chain[:len(chain)-1] {
			if _, _, err := r.Register("orders", []byte(schemas[name])); err != nil {
				t.Fatalf("line %d: register %s: %v", line, name, err)
			}
		}
		if err := r.SetMode("orders", mode); err != nil {
			t.Fatal(err)
		}
		newText := []byte(schemas[chain[len(chain)-1]])
		err := r.Check("orders", newText)
		if want == "ok" {
			if err != nil {
				t.Fatalf("line %d: want compatible, got %v", line, err)
			}
			return
		}
		var ie *IncompatibleError
		if !errors.As(err, &ie) || !errors.Is(err, ErrIncompatible) {
			t.Fatalf("line %d: want incompatible, got %v", line, err)
		}
		wantFields := strings.Split(strings.TrimSuffix(strings.TrimPrefix(want, "fail("), ")"), ",")
		var got []string
		for _, c := range ie.Changes {
			if !slices.Contains(got, c.Field) {
				got = append(got, c.Field)
			}
		}
		slices.Sort(got)
		slices.Sort(wantFields)
		if !slices.Equal(got, wantFields) {
			t.Fatalf("line %d: breaking fields %q, want %q\n%v", line, got, wantFields, err)
		}
		// Register refuses what Check refuses, and writes nothing.
		before, _ := r.Versions("orders")
		if _, _, err := r.Register("orders", newText); !errors.Is(err, ErrIncompatible) {
			t.Fatalf("line %d: Register accepted what Check refused: %v", line, err)
		}
		after, _ := r.Versions("orders")
		if len(after) != len(before) {
			t.Fatalf("line %d: a refused registration was stored", line)
		}
	})
}
