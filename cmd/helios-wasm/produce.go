package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/storage"
)

func produceCommand() *cli.Command {
	return &cli.Command{
		Name:  "produce",
		Usage: "append JSON lines from stdin to a topic of the embedded log",
		Description: "Each non-blank line of stdin (valid JSON) becomes one record. With --key-field the record key is that\n" +
			"top-level string field and records with one key go to one partition; otherwise lines go round-robin.\n" +
			"Lines are committed in synced batches; a line that is not JSON stops the command (exit 2) after\n" +
			"committing the lines before it.\n\n" +
			"Example:\n  printf '{\"user\":\"u1\"}\\n{\"user\":\"u2\"}\\n' | helios-wasm produce --topic events --partitions 4 --key-field user",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Required: true},
			&cli.UintFlag{Name: "partitions", Value: 1, Usage: "partitions when creating the topic"},
			&cli.StringFlag{Name: "key-field", Usage: "top-level JSON string field used as the record key"},
			&cli.IntFlag{Name: "batch-size", Value: 1000, Usage: "records per synced commit"},
			dataDirFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("produce reads stdin and takes no arguments, got %q", c.Args().Slice())
			}
			db, err := openDB(c)
			if err != nil {
				return err
			}
			defer db.Close()
			topic := c.String("topic")
			if _, err := db.Topic(topic); err != nil {
				if err := db.CreateTopic(topic, uint32(c.Uint("partitions"))); err != nil {
					return usageError{err}
				}
			}
			ti, err := db.Topic(topic)
			if err != nil {
				return err
			}
			n, err := produce(db, ti, os.Stdin, c.String("key-field"), max(c.Int("batch-size"), 1))
			fmt.Fprintf(os.Stderr, "produced %d records to %s\n", n, topic)
			return err
		},
	}
}

type badLine struct {
	line int64
	err  error
}

func (b *badLine) Error() string {
	return fmt.Sprintf("stdin line %d: %v (the lines before it are committed)", b.line, b.err)
}

func produce(db *storage.DB, ti storage.TopicInfo, in io.Reader, keyField string, batchSize int) (int64, error) {
	r := bufio.NewReaderSize(in, 1<<20)
	b := db.NewBatch()
	defer func() { b.Close() }()
	var produced, pending, lineNo int64
	flush := func() error {
		if pending == 0 {
			return nil
		}
		if err := db.Commit(b); err != nil {
			return err
		}
		produced += pending
		pending = 0
		b = db.NewBatch()
		return nil
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			line = bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(line)) > 0 {
				key, kerr := recordKey(line, keyField)
				if kerr != nil {
					if ferr := flush(); ferr != nil {
						return produced, ferr
					}
					return produced, usageError{&badLine{lineNo, kerr}}
				}
				part := uint32(lineNo) % ti.Partitions
				if key != nil {
					h := fnv.New32a()
					h.Write(key)
					part = h.Sum32() % ti.Partitions
				}
				e := storage.Entry{ID: uuid.New(), Key: key, Value: line}
				if err := b.Append(ti.Name, part, &e); err != nil {
					return produced, err
				}
				pending++
				if pending >= int64(batchSize) {
					if err := flush(); err != nil {
						return produced, err
					}
				}
			}
		}
		if err == io.EOF {
			return produced, flush()
		}
		if err != nil {
			return produced, err
		}
	}
}

// recordKey validates a line as JSON and extracts the key field.
func recordKey(line []byte, keyField string) ([]byte, error) {
	if keyField == "" {
		if !json.Valid(line) {
			var v any
			return nil, fmt.Errorf("not valid JSON: %v", json.Unmarshal(line, &v))
		}
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	raw, ok := obj[keyField]
	if !ok {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return raw, nil // a non-string key: its JSON text
	}
	return []byte(s), nil
}
