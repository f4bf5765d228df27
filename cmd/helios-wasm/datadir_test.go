package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// finishedJob produces 500 records and runs a log -> log job over them to
// its end, returning the data directory and the run's arguments.
func finishedJob(t *testing.T) (string, []string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if r := runCLI(t, strings.Join(jsonRecords(500, 3), "\n")+"\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	args := []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out", "--data-dir", data, "--admin", ""}
	if r := runCLI(t, "", testEnv(t), args...); r.code != 0 || !strings.Contains(r.stderr, "500 records in") {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	// A read opens it once more: Pebble flushes the WAL into an sstable.
	if r := runCLI(t, "", nil, "topics", "--data-dir", data); r.code != 0 {
		t.Fatalf("topics: %d %s", r.code, r.stderr)
	}
	return data, args
}

// TestDamagedDataDirExits3: a data directory that lost files, or whose
// sstable is corrupt, is refused with exit 3 and how to recover; a finished
// job is never run again as if the directory were new.
func TestDamagedDataDirExits3(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, data string)
		stderr []string
	}{
		{"empty files deleted", func(t *testing.T, data string) {
			ents, _ := os.ReadDir(data)
			for _, e := range ents {
				if info, _ := e.Info(); info.Size() == 0 {
					os.Remove(filepath.Join(data, e.Name()))
				}
			}
		}, []string{"Pebble's files are missing", "marker.manifest", "restore the directory from a backup", "move it aside"}},
		{"sstable corrupt", func(t *testing.T, data string) {
			ssts, _ := filepath.Glob(filepath.Join(data, "*.sst"))
			if len(ssts) == 0 {
				t.Fatal("no sstable")
			}
			for _, p := range ssts {
				b, _ := os.ReadFile(p)
				for i := 0; i < len(b)/2; i++ {
					b[i] ^= 0x5a
				}
				os.WriteFile(p, b, 0o644)
			}
		}, []string{"damaged", "restore the directory from a backup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, args := finishedJob(t)
			tt.damage(t, data)
			for _, cmd := range [][]string{args, {"topics", "--data-dir", data}, {"consume", "--topic", "out", "--data-dir", data}} {
				r := runCLI(t, "", testEnv(t), cmd...)
				if r.code != 3 || strings.Contains(r.stderr, "restart to resume") || strings.Contains(r.stderr, "records in") {
					t.Fatalf("%s: exit %d, want 3\n%s", cmd[0], r.code, r.stderr)
				}
				for _, s := range tt.stderr {
					if !strings.Contains(r.stderr, s) {
						t.Fatalf("%s: no %q in\n%s", cmd[0], s, r.stderr)
					}
				}
			}
		})
	}
}

// TestReadOnlyCommandsOnReadOnlyCopy: topics, consume and dlq list work on a
// copy of the data directory without write permission. (As root, mode bits
// do not apply: storage's TestReadOnlyOpen covers this with a read-only
// filesystem wrapper.)
func TestReadOnlyCommandsOnReadOnlyCopy(t *testing.T) {
	data, _ := finishedJob(t)
	// Root ignores mode bits: as root, the commands run as nobody on a
	// copy every user can read.
	var asNobody func(*exec.Cmd)
	if os.Geteuid() == 0 {
		asNobody = asUser(t, 65534, 65534)
		shared, err := os.MkdirTemp("", "helios-readonly-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", shared).Run(); os.RemoveAll(shared) })
		if out, err := exec.Command("cp", "-a", data, shared).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		data = filepath.Join(shared, "data")
		if err := os.Chmod(shared, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(cliBin); err != nil {
			t.Fatal(err)
		}
		for d := filepath.Dir(cliBin); d != "/" && d != "."; d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // the test binary's build directory, and its parents under /tmp
			if d == os.TempDir() {
				break
			}
		}
	}
	if out, err := exec.Command("chmod", "-R", "a-w,a+rX", data).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v %s", err, out)
	}
	defer exec.Command("chmod", "-R", "u+w", data).Run()
	if r := runCLIWith(t, asNobody, "", nil, "topics", "--data-dir", data); r.code != 0 || !strings.Contains(r.stdout, "out ") {
		t.Fatalf("topics: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLIWith(t, asNobody, "", nil, "consume", "--topic", "out", "--data-dir", data); r.code != 0 || strings.Count(r.stdout, "\n") != 500 {
		t.Fatalf("consume: %d %s", r.code, r.stderr)
	}
	if r := runCLIWith(t, asNobody, "", nil, "dlq", "list", "--data-dir", data); r.code != 0 || !strings.Contains(r.stderr, "0 entries") {
		t.Fatalf("dlq list: %d %s", r.code, r.stderr)
	}
}
