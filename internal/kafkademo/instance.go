package kafkademo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// event is something an instance logged (or its exit) that the demo shows.
type event struct {
	inst *instance
	at   time.Time
	what string // "assigned", "revoked", "lost", "restored", "error", "exited"
	// parts are the partitions of assigned, revoked and lost; restored has
	// one partition and records the changelog records replayed.
	parts   []int32
	records int
	text    string // error's message, exited's status
}

// instance is one `helios-wasm run --follow` process of the pipeline, run
// with --log-format json so that its partition changes can be followed.
type instance struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, after done

	mu      sync.Mutex
	held    map[int32]bool // partitions it holds, after its log
	pending []event        // not yet taken
	stderr  bytes.Buffer   // everything it logged
}

// startInstance starts the CLI with args and follows its log (take returns
// what happened since the last call).
func startInstance(name, cli string, args, env []string) (*instance, error) {
	cmd := exec.Command(cli, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start instance %s (%s): %w", name, cli, err)
	}
	in := &instance{name: name, cmd: cmd, done: make(chan struct{}), held: map[int32]bool{}}
	go func() {
		in.follow(stderr)
		in.err = cmd.Wait()
		in.mu.Lock()
		in.pending = append(in.pending, event{inst: in, at: time.Now(), what: "exited", text: exitStatus(in.err)})
		in.mu.Unlock()
		close(in.done)
	}()
	return in, nil
}

// logLine is the part of the CLI's JSON log lines the demo reads.
type logLine struct {
	Level      string  `json:"level"`
	Msg        string  `json:"msg"`
	Partitions []int32 `json:"partitions"`
	Partition  int32   `json:"partition"`
	Records    int     `json:"records"`
	Error      string  `json:"error"`
}

func (in *instance) follow(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		in.mu.Lock()
		in.stderr.Write(sc.Bytes())
		in.stderr.WriteByte('\n')
		in.mu.Unlock()
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // not a log line (a panic's trace is kept in stderr)
		}
		ev := event{inst: in, at: time.Now(), parts: l.Partitions}
		switch {
		case l.Msg == "partitions assigned":
			ev.what = "assigned"
		case l.Msg == "partitions revoked":
			ev.what = "revoked"
		case l.Msg == "partitions lost":
			ev.what = "lost"
		case l.Msg == "partition state restored from the changelog":
			ev.what, ev.parts, ev.records = "restored", []int32{l.Partition}, l.Records
		case l.Level == "ERROR":
			ev.what, ev.text = "error", l.Msg
			if l.Error != "" {
				ev.text += ": " + l.Error
			}
		default:
			continue
		}
		in.mu.Lock()
		for _, p := range ev.parts {
			switch ev.what {
			case "assigned":
				in.held[p] = true
			case "revoked", "lost":
				delete(in.held, p)
			}
		}
		in.pending = append(in.pending, ev)
		in.mu.Unlock()
	}
	io.Copy(io.Discard, r) // a line beyond the scanner's limit: keep the pipe drained
}

// take returns the events since the last call.
func (in *instance) take() []event {
	in.mu.Lock()
	defer in.mu.Unlock()
	evs := in.pending
	in.pending = nil
	return evs
}

// partitions lists the partitions the instance holds, in order; none once
// it has exited.
func (in *instance) partitions() []int32 {
	if in.exited() {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []int32
	for p := range in.held {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (in *instance) exited() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// log returns the last lines of what the instance logged.
func (in *instance) log(lines int) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	all := strings.Split(strings.TrimRight(in.stderr.String(), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// kill sends SIGKILL and waits for the exit.
func (in *instance) kill() {
	in.cmd.Process.Kill()
	<-in.done
}

// stop sends SIGTERM and waits up to grace for the exit; it returns the
// exit status (nil for exit 0) or an error saying it did not stop, in which
// case the process is killed.
func (in *instance) stop(grace time.Duration) error {
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-in.done:
		return in.err
	case <-time.After(grace):
		in.kill()
		return fmt.Errorf("instance %s did not stop within %s of SIGTERM (killed)", in.name, grace)
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
		}
		return fmt.Sprintf("exit %d", ee.ExitCode())
	}
	return err.Error()
}

// fmtParts writes partitions as [0 1 2], in order.
func fmtParts(parts []int32) string {
	if len(parts) == 0 {
		return "-"
	}
	parts = slices.Sorted(slices.Values(parts))
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = fmt.Sprint(p)
	}
	return "[" + strings.Join(s, " ") + "]"
}
