package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/internal/scaffold"
)

func pluginNewCommand() *cli.Command {
	return &cli.Command{
		Name:      "new",
		Usage:     "create an operator project (go, rust, c, cpp, assemblyscript or zig) that builds with `make`",
		ArgsUsage: "NAME [DIR]",
		Description: "Writes a starter operator (it upper-cases values and appends --config suffix=...), a Makefile (`make` builds\n" +
			"NAME.wasm, `make test` runs it on testdata/ with `helios-wasm plugin test`) and the SDK, vendored so the project\n" +
			"builds offline. DIR defaults to ./NAME and must not exist or be empty.\n\n" +
			"Example:\n  helios-wasm plugin new --lang rust enrich && cd enrich && make test",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "lang", Aliases: []string{"l"}, Required: true, Usage: "language: " + strings.Join(scaffold.Languages, ", ")},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("plugin new: want NAME [DIR], got %d argument(s) (see --help)", c.NArg())
			}
			name, dir := c.Args().Get(0), c.Args().Get(1)
			if dir == "" {
				dir = name
			}
			files, err := scaffold.Write(c.String("lang"), name, dir)
			if err != nil {
				return usagef("plugin new: %v", err)
			}
			fmt.Printf("created %s (%d files): a %s operator\n\n  cd %s\n  make        # builds %s.wasm\n  make test   # runs it on testdata/in.jsonl\n",
				dir, len(files), c.String("lang"), filepath.Clean(dir), name)
			return nil
		},
	}
}
