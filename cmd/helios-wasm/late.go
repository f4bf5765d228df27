package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

func lateCommand() *cli.Command {
	return &cli.Command{
		Name:  "late",
		Usage: "show a pipeline's late records: counts by decision and the most recent 10,000",
		Description: "Records behind the pipeline watermark when they were read (--event-time) are counted by decision\n" +
			"(accept: within the allowed lateness and processed; drop: sent to the late output) and the most recent\n" +
			"10,000 are kept with the pipeline's committed state. Prints one JSON object per late record, oldest\n" +
			"first, and the counts on stderr. Works while a process holds the data directory.\n\n" +
			"Example:\n  helios-wasm late --name clicks",
		Flags: []cli.Flag{dataDirFlag(), &cli.StringFlag{Name: "name", Usage: "the pipeline (default: the only one in the data directory)"}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("late takes no arguments, got %q", c.Args().Slice())
			}
			rep, err := lateReport(c)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			for _, r := range rep.Recent {
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			fmt.Fprintf(os.Stderr, "%d late records accepted, %d sent to the late output; the %d most recent are listed\n",
				rep.Accepted, rep.Dropped, len(rep.Recent))
			return nil
		},
	}
}

// lateReport reads the report from the data directory, or through the
// process holding it.
func lateReport(c *cli.Context) (runtime.LateReport, error) {
	var rep runtime.LateReport
	db, err := openDBReadOnly(c)
	if errors.Is(err, storage.ErrLocked) {
		name, err := runningPipeline(c)
		if err != nil {
			return rep, err
		}
		return rep, getData(c, "/v1/late/"+url.PathEscape(name), &rep)
	}
	if err != nil {
		return rep, err
	}
	defer db.Close()
	name, err := pipelineName(c, db)
	if err != nil {
		return rep, err
	}
	return runtime.LateRecords(db, name)
}
