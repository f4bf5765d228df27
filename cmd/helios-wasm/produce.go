package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

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
			"Lines are committed in synced batches; a line that is not JSON stops the command (exit 2) after\n" +
			"committing the lines before it. While a running pipeline holds the data directory, the records go through\n" +
			"that process (its socket in the data directory).\n\n" +
			"Example:\n  printf '{\"user\":\"u1\"}\\n{\"user\":\"u2\"}\\n' | helios-wasm produce --topic events --partitions 4 --key-field user",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Required: true},
			&cli.UintFlag{Name: "partitions", Value: 1, Usage: "partitions when creating the topic"},
			&cli.StringFlag{Name: "key-field", Usage: "top-level JSON string field used as the record key"},
			&cli.IntFlag{Name: "batch-size", Value: 1000, Usage: "records per synced commit"},
			&cli.StringFlag{Name: "schema", Usage: "validate every line against `SUBJECT[@VERSION]` (default: latest) and tag the records with it; all lines or none are committed"},
			dataDirFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("produce reads stdin and takes no arguments, got %q", c.Args().Slice())
			}
			topic := c.String("topic")
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
			var n int64
			if c.IsSet("schema") {
				n, err = produceWithSchema(c, db, ti)
			} else {
				n, err = logio.Produce(db, ti, os.Stdin, c.String("key-field"), max(c.Int("batch-size"), 1))
			}
			fmt.Fprintf(os.Stderr, "produced %d records to %s\n", n, topic)
			var bad *logio.BadLineError
			if errors.As(err, &bad) {
				return usageError{err}
			}
			return err
		},
	}
}

// produceRemote sends stdin to the process holding the data directory.
func produceRemote(c *cli.Context, topic string) error {
	q := url.Values{"partitions": {fmt.Sprint(c.Uint("partitions"))}, "key_field": {c.String("key-field")},
		"batch_size": {fmt.Sprint(max(c.Int("batch-size"), 1))}}
	resp, err := dataClient(c).Post("http://data/v1/topics/"+url.PathEscape(topic)+"/records?"+q.Encode(), "application/x-ndjson", os.Stdin)
	if err != nil {
		return fmt.Errorf("data directory in use, and its process does not answer on its socket: %w", err)
	}
	defer resp.Body.Close()
	var res struct {
		Produced int64
		Error    string
	}
	json.NewDecoder(resp.Body).Decode(&res)
	fmt.Fprintf(os.Stderr, "produced %d records to %s (through the running process)\n", res.Produced, topic)
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		return usagef("%s", res.Error)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s", res.Error)
	}
	return nil
}

// dataClient talks to the process that holds --data-dir.
func dataClient(c *cli.Context) *http.Client {
	dir, _ := filepath.Abs(c.String("data-dir"))
	return admin.DataClient(dir)
}
