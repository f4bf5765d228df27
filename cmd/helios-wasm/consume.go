package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

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
			db, err := openDB(c)
			if err != nil {
				return err
			}
			defer db.Close()
			ti, err := db.Topic(c.String("topic"))
			if err != nil {
				return usageError{err}
			}
			only := c.Int("partition")
			if only >= int(ti.Partitions) {
				return usagef("--partition %d: topic %s has %d partitions", only, ti.Name, ti.Partitions)
			}
			w := bufio.NewWriterSize(os.Stdout, 64<<10)
			defer w.Flush()
			var entries []storage.Entry
			var arena []byte
			for p := uint32(0); p < ti.Partitions; p++ {
				if only >= 0 && uint32(only) != p {
					continue
				}
				for off := c.Uint64("from-offset"); off < ti.HighWater[p]; {
					entries, arena, err = db.ReadLog(ti.Name, p, off, 1000, 8<<20, entries[:0], arena)
					if err != nil {
						return err
					}
					if len(entries) == 0 {
						break
					}
					for _, e := range entries {
						w.Write(e.Value)
						w.WriteByte('\n')
					}
					off = entries[len(entries)-1].Offset + 1
				}
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("write stdout: %w", err)
			}
			return nil
		},
	}
}

func topicsCommand() *cli.Command {
	return &cli.Command{
		Name:        "topics",
		Usage:       "list the topics of the embedded log",
		Description: "Example:\n  helios-wasm topics --data-dir ./helios-data",
		Flags:       []cli.Flag{dataDirFlag()},
		Action: func(c *cli.Context) error {
			db, err := openDB(c)
			if err != nil {
				return err
			}
			defer db.Close()
			w := bufio.NewWriter(os.Stdout)
			defer w.Flush()
			fmt.Fprintf(w, "%-32s %10s %14s  %s\n", "TOPIC", "PARTITIONS", "RECORDS", "HIGH-WATER MARKS")
			for _, t := range db.Topics() {
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
