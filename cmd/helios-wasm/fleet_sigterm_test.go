package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
)

// fleetMember is a `--log-format json run` instance of a fleet whose log is
// followed for the partitions it holds.
type fleetMember struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, after done

	mu   sync.Mutex
	held map[int32]bool
	log  strings.Builder
}

func startMember(t *testing.T, args ...string) *fleetMember {
	t.Helper()
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append(os.Environ(), testEnv(t)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &fleetMember{cmd: cmd, done: make(chan struct{}), held: map[int32]bool{}}
	go func() {
		m.follow(stderr)
		m.err = cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-m.done })
	return m
}

func (m *fleetMember) follow(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg        string  `json:"msg"`
			Partitions []int32 `json:"partitions"`
		}
		_ = json.Unmarshal(sc.Bytes(), &l)
		m.mu.Lock()
		m.log.Write(sc.Bytes())
		m.log.WriteByte('\n')
		for _, p := range l.Partitions {
			switch l.Msg {
			case "partitions assigned":
				m.held[p] = true
			case "partitions revoked", "partitions lost":
				delete(m.held, p)
			}
		}
		m.mu.Unlock()
	}
	io.Copy(io.Discard, r)
}

// partitions are the partitions the member's log says it holds.
func (m *fleetMember) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int32, 0, len(m.held))
	for p := range m.held {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (m *fleetMember) logged() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

func (m *fleetMember) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// TestKafkaSIGTERMLeavesGroup: SIGTERM in the middle of a backlog makes an
// instance of a kafka: -> kafka: fleet (static members, as in the
// StatefulSet) commit, leave the consumer group and exit 0 within a bound,
// and its partitions move to the other instance at once, far sooner than
// the 30 s session timeout after which the group would move a silent
// member's partitions. The survivor then processes the rest and what is
// produced next, and every input is counted exactly once across the move.
func TestKafkaSIGTERMLeavesGroup(t *testing.T) {
	const (
		parts, users = 4, 53
		session      = 30 * time.Second
		exitBound    = 10 * time.Second // commit the batches in flight, then LeaveGroup (3 s at most)
		moveBound    = 10 * time.Second // SIGTERM to the survivor holding every partition
	)
	c := kafkatest.Shared(t)
	in := c.Topic(t, parts)
	out := in + "-out"
	dir := t.TempDir()
	// The pipeline is named after the topic: its own consumer group and
	// changelog on every run.
	args := func(id string) []string {
		return []string{"--log-format", "json", "run", "--plugin", plugin(t, "count"), "--input", "kafka:" + in, "--output", "kafka:" + out,
			"--kafka-brokers", strings.Join(c.Addrs(), ","), "--kafka-create-topics", "--kafka-session-timeout", session.String(),
			"--kafka-instance-id", id, "--transaction-timeout", "5s", "--follow", "--name", in,
			"--data-dir", filepath.Join(dir, id), "--batch-size", "200", "--admin", ""}
	}
	w := watchOutput(t, c, out)
	produceKeyed(t, c, in, 0, 10_000, users)
	a := startMember(t, args("helios-0")...)
	b := startMember(t, args("helios-1")...)

	running := []*fleetMember{a, b}
	waitUntil := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			for _, m := range running {
				if m.exited() {
					t.Fatalf("%s: an instance exited (%v)\n%s", what, m.err, m.logged())
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s (a holds %v, b holds %v, %d outputs)\na:\n%s\nb:\n%s",
					what, timeout, a.partitions(), b.partitions(), w.count(), a.logged(), b.logged())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("both instances hold partitions", 2*time.Minute, func() bool {
		pa, pb := a.partitions(), b.partitions()
		return len(pa) > 0 && len(pb) > 0 && len(pa)+len(pb) == parts && w.count() > 0
	})
	// A backlog, so that a is stopped with batches in flight.
	produceKeyed(t, c, in, 10_000, 60_000, users)
	held := a.partitions()
	at := w.count()
	t.Logf("a holds %v, b holds %v; SIGTERM a at %d of 70000 outputs", held, b.partitions(), at)
	if at >= 70_000 {
		t.Fatal("the backlog was done before the signal: no work in flight to commit")
	}

	running = []*fleetMember{b}
	sent := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		t.Logf("a: SIGTERM to exit %v", time.Since(sent).Round(time.Millisecond))
		if a.err != nil {
			t.Fatalf("a's exit after SIGTERM: %v\n%s", a.err, a.logged())
		}
		if took := time.Since(sent); took > exitBound {
			t.Errorf("a took %v from SIGTERM to exit, bound %v", took, exitBound)
		}
	case <-time.After(session):
		t.Fatalf("a did not exit within %s of SIGTERM\n%s", session, a.logged())
	}
	waitUntil("b holds every partition", session, func() bool { return len(b.partitions()) == parts })
	moved := time.Since(sent)
	t.Logf("b holds %v, %v after the SIGTERM", b.partitions(), moved.Round(time.Millisecond))
	if moved > moveBound {
		t.Errorf("b took %v to get a's partitions %v: a did not leave the group (the session timeout is %s)", moved, held, session)
	}

	// b processes a's partitions, with their state, from where a committed.
	produceKeyed(t, c, in, 70_000, 20_000, users)
	waitUntil("b processes every partition", 2*time.Minute, func() bool { return w.count() >= 90_000 })
	time.Sleep(2 * time.Second) // anything beyond the inputs would show now
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
		if b.err != nil {
			t.Errorf("b's exit after SIGTERM: %v\n%s", b.err, b.logged())
		}
	case <-time.After(session):
		t.Fatalf("b did not exit within %s of SIGTERM", session)
	}
	w.checkCounts(t, 90_000, users)
}
