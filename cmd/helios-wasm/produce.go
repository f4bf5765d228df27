package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/internal/logio"
	"github.com/heliosdb/helios-wasm/storage"
)

func produceCommand() *cli.Command {
	return &cli.Command{
		Name:  "produce",
		Usage: "append JSON lines from stdin to a topic of the embedded log",
		Description: "Each non-blank line of stdin (valid JSON) becomes one record. With --key-field the record key is that\n" +
			"top-level string field and records with one key go to one partition; otherwise lines go round-robin.\n" +
			"Lines are committed in synced batches; a line that is not JSON or longer than --max-record-bytes stops the\n" +
			"command (exit 2) after committing the lines before it. Every exit (success, error, SIGINT/SIGTERM) prints\n" +
			"\"committed N records to TOPIC (input lines 1..L)\": rerun with --skip L to resume after them. With\n" +
			"--id-from the record ids derive from the line's content or number, so that a pipeline's --dedup drops the\n" +
			"records a rerun produces again. While a running pipeline holds the data directory, the records go through\n" +
			"that process (its socket in the data directory).\n\n" +
			"Example:\n  printf '{\"user\":\"u1\"}\\n{\"user\":\"u2\"}\\n' | helios-wasm produce --topic events --partitions 4 --key-field user",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Required: true},
			&cli.UintFlag{Name: "partitions", Value: 1, Usage: "partitions when creating the topic"},
			&cli.StringFlag{Name: "key-field", Usage: "top-level JSON string field used as the record key"},
			&cli.IntFlag{Name: "batch-size", Value: 1000, Usage: "records per synced commit"},
			&cli.Int64Flag{Name: "skip", Usage: "ignore the first `N` input lines (the L an interrupted run printed)"},
			&cli.StringFlag{Name: "id-from", Usage: "derive record ids from the line's `content` or its `line` number (default: random ids)"},
			&cli.StringFlag{Name: "id-scope", Usage: "with --id-from line: the input's name, part of each id (default: the topic)"},
			&cli.IntFlag{Name: "max-record-bytes", Value: logio.DefaultMaxRecordBytes, Usage: "longest accepted line in bytes; a longer one stops the command (exit 2)"},
			&cli.StringFlag{Name: "schema", Usage: "validate every line against `SUBJECT[@VERSION]` (default: latest) and tag the records with it; all lines or none are committed"},
			dataDirFlag(),
		},
		Action: produceAction,
	}
}

func produceAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("produce reads stdin and takes no arguments, got %q", c.Args().Slice())
	}
	switch {
	case c.Int64("skip") < 0:
		return usagef("--skip %d: must not be negative", c.Int64("skip"))
	case c.Int("max-record-bytes") < 1:
		return usagef("--max-record-bytes %d: must be positive", c.Int("max-record-bytes"))
	case logio.ValidateIDFrom(c.String("id-from")) != nil:
		return usagef("--id-from %q: want content or line", c.String("id-from"))
	case c.IsSet("id-scope") && c.String("id-from") != logio.IDLine:
		return usagef("--id-scope only applies to --id-from line")
	case c.IsSet("schema") && (c.IsSet("skip") || c.IsSet("id-from")):
		return usagef("--schema commits all lines or none: --skip and --id-from do not apply")
	}
	topic := c.String("topic")
	// A storage failure (a full disk) comes back from a commit as an
	// error, and the report below prints what was committed.
	db, err := openDB(c)
	if errors.Is(err, storage.ErrLocked) && c.IsSet("schema") {
		return fmt.Errorf("produce --schema needs the data directory, which a running pipeline holds: stop the pipeline, or produce without --schema: %w", err)
	}
	if errors.Is(err, storage.ErrLocked) {
		return produceRemote(c, topic)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Topic(topic); err != nil {
		if err := db.CreateTopic(topic, uint32(c.Uint("partitions"))); err != nil {
			return usageError{err}
		}
	}
	ti, err := db.Topic(topic)
	if err != nil {
		return err
	}
	if c.IsSet("schema") {
		n, err := produceWithSchema(c, db, ti)
		fmt.Fprintf(os.Stderr, "committed %d records to %s\n", n, topic)
		var bad *logio.BadLineError
		if errors.As(err, &bad) {
			return usageError{err}
		}
		return err
	}
	p, err := logio.NewProducer(db, ti, produceOptions(c))
	if err != nil {
		return usageError{err}
	}
	// A signal commits what is staged and exits at once: Run may be blocked
	// reading stdin.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		n, err := p.Stop()
		fmt.Fprintln(os.Stderr, committedMsg(c, n, true))
		if err != nil {
			fmt.Fprintf(os.Stderr, "helios-wasm: error: %v\n", err)
		}
		fmt.Fprintf(os.Stderr, "helios-wasm: error: interrupted by %v\n", sig)
		db.Close()
		os.Exit(exitRuntime)
	}()
	n, err := p.Run(os.Stdin)
	if errors.Is(err, logio.ErrStopped) {
		select {} // the signal handler reports and exits
	}
	fmt.Fprintln(os.Stderr, committedMsg(c, n, err != nil))
	var bad *logio.BadLineError
	if errors.As(err, &bad) {
		return usageError{err}
	}
	return err
}

func produceOptions(c *cli.Context) logio.ProduceOptions {
	return logio.ProduceOptions{KeyField: c.String("key-field"), BatchSize: max(c.Int("batch-size"), 1), Skip: c.Int64("skip"),
		IDFrom: c.String("id-from"), IDScope: c.String("id-scope"), MaxRecordBytes: c.Int("max-record-bytes")}
}

// committedMsg says what produce committed, and on failure how to resume.
func committedMsg(c *cli.Context, n logio.Produced, failed bool) string {
	skip := c.Int64("skip")
	s := fmt.Sprintf("committed %d records to %s", n.Records, c.String("topic"))
	switch {
	case n.Lines > skip:
		s += fmt.Sprintf(" (input lines %d..%d)", skip+1, n.Lines)
	case skip > 0:
		s += fmt.Sprintf(" (no input line after the %d skipped)", skip)
	default:
		s += " (no input lines)"
	}
	if failed {
		s += fmt.Sprintf("; to resume after them, rerun with --skip %d", max(n.Lines, skip))
	}
	return s
}

// produceRemote sends stdin to the process holding the data directory. Only
// whole lines are sent, so that on SIGINT/SIGTERM the body can end at a line
// boundary: the process commits what it has and reports the count.
func produceRemote(c *cli.Context, topic string) error {
	o := produceOptions(c)
	q := url.Values{"partitions": {fmt.Sprint(c.Uint("partitions"))}, "key_field": {o.KeyField},
		"batch_size": {fmt.Sprint(o.BatchSize)}, "skip": {fmt.Sprint(o.Skip)}, "id_from": {o.IDFrom}, "id_scope": {o.IDScope},
		"max_record_bytes": {fmt.Sprint(o.MaxRecordBytes)}}
	body := newLineSender(os.Stdin, o.MaxRecordBytes)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var interrupted atomic.Value
	go func() {
		if sig, ok := <-sigs; ok {
			interrupted.Store(sig)
			body.stop()
		}
	}()
	resp, err := dataClient(c).Post("http://data/v1/topics/"+url.PathEscape(topic)+"/records?"+q.Encode(), "application/x-ndjson", body)
	if err != nil {
		return fmt.Errorf("data directory in use, and its process does not answer on its socket: %w (nothing is known to be committed: check with consume before rerunning)", err)
	}
	defer resp.Body.Close()
	var res struct {
		Produced int64
		Lines    int64
		Error    string
	}
	json.NewDecoder(resp.Body).Decode(&res)
	sig := interrupted.Load()
	fmt.Fprintln(os.Stderr, committedMsg(c, logio.Produced{Records: res.Produced, Lines: res.Lines}, resp.StatusCode != http.StatusOK || sig != nil)+
		" (through the running process)")
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		return usagef("%s", res.Error)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s", res.Error)
	case sig != nil:
		return fmt.Errorf("interrupted by %v", sig)
	}
	return nil
}

// lineSender is a request body that forwards whole lines of its input (a
// line longer than max is forwarded as it comes: the receiver refuses it),
// and ends at a line boundary once stopped.
type lineSender struct {
	pr *io.PipeReader
	pw *io.PipeWriter
	mu sync.Mutex // held while a line is written
}

func newLineSender(in io.Reader, max int) *lineSender {
	pr, pw := io.Pipe()
	s := &lineSender{pr: pr, pw: pw}
	go func() {
		r := bufio.NewReaderSize(in, 1<<20)
		var line []byte
		for {
			frag, err := r.ReadSlice('\n')
			line = append(line, frag...)
			if err == bufio.ErrBufferFull && len(line) <= max+2 {
				continue
			}
			s.mu.Lock()
			_, werr := pw.Write(line)
			s.mu.Unlock()
			line = line[:0]
			if werr != nil { // stopped, or the request ended
				return
			}
			if err != nil && err != bufio.ErrBufferFull {
				if err == io.EOF {
					err = nil
				}
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return s
}

func (s *lineSender) Read(p []byte) (int, error) { return s.pr.Read(p) }

// Close (by the HTTP client, when the request is over) unblocks the
// forwarding goroutine.
func (s *lineSender) Close() error { return s.pr.Close() }

// stop ends the body after the line being written.
func (s *lineSender) stop() {
	s.mu.Lock()
	s.pw.Close()
	s.mu.Unlock()
}

// dataClient talks to the process that holds --data-dir.
func dataClient(c *cli.Context) *http.Client {
	dir, _ := filepath.Abs(c.String("data-dir"))
	return admin.DataClient(dir)
}
