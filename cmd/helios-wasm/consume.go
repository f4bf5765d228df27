package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/internal/logio"
	"github.com/heliosdb/helios-wasm/storage"
)

func consumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "consume",
		Usage: "print the committed values of a topic, one per line, and exit at its end",
		Description: "Only committed records are shown (never past the durable high-water mark). Partitions are printed\n" +
			"one after another, each in offset order.\n\n" +
			"Example:\n  helios-wasm consume --topic events-upper --from-offset 100",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Required: true},
			&cli.Uint64Flag{Name: "from-offset", Usage: "first offset to print, in every partition"},
			&cli.IntFlag{Name: "partition", Value: -1, Usage: "only this partition (-1: all)"},
			dataDirFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("consume takes no arguments, got %q", c.Args().Slice())
			}
			db, err := openDBReadOnly(c)
			if errors.Is(err, storage.ErrLocked) {
				return consumeRemote(c)
			}
			if err != nil {
				return err
			}
			defer db.Close()
			if _, err := db.Topic(c.String("topic")); err != nil {
				return usageError{err}
			}
			if err := logio.Consume(db, c.String("topic"), c.Int("partition"), c.Uint64("from-offset"), os.Stdout); err != nil {
				return usageError{err}
			}
			return nil
		},
	}
}

// consumeRemote reads through the process holding the data directory.
func consumeRemote(c *cli.Context) error {
	q := url.Values{"partition": {fmt.Sprint(c.Int("partition"))}, "from": {fmt.Sprint(c.Uint64("from-offset"))}}
	body, err := dataGet(c, "/v1/topics/"+url.PathEscape(c.String("topic"))+"/records?"+q.Encode())
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.Copy(os.Stdout, body)
	return err
}

func topicsCommand() *cli.Command {
	return &cli.Command{
		Name:        "topics",
		Usage:       "list the topics of the embedded log",
		Description: "Example:\n  helios-wasm topics --data-dir ./helios-data",
		Flags:       []cli.Flag{dataDirFlag()},
		Action: func(c *cli.Context) error {
			var topics []storage.TopicInfo
			db, err := openDBReadOnly(c)
			switch {
			case errors.Is(err, storage.ErrLocked):
				resp, rerr := dataClient(c).Get("http://data/v1/topics")
				if rerr != nil {
					return fmt.Errorf("data directory in use, and its process does not answer on its socket: %w", rerr)
				}
				defer resp.Body.Close()
				if err := json.NewDecoder(resp.Body).Decode(&topics); err != nil {
					return err
				}
			case err != nil:
				return err
			default:
				defer db.Close()
				topics = db.Topics()
			}
			w := bufio.NewWriter(os.Stdout)
			defer w.Flush()
			fmt.Fprintf(w, "%-32s %10s %14s  %s\n", "TOPIC", "PARTITIONS", "RECORDS", "HIGH-WATER MARKS")
			for _, t := range topics {
				var total uint64
				for _, hw := range t.HighWater {
					total += hw
				}
				fmt.Fprintf(w, "%-32s %10d %14d  %v\n", t.Name, t.Partitions, total, t.HighWater)
			}
			return nil
		},
	}
}
