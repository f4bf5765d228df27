package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/wasmbin"
)

func pluginCommand() *cli.Command {
	return &cli.Command{
		Name:  "plugin",
		Usage: "work with operator plugins",
		Subcommands: []*cli.Command{pluginNewCommand(), pluginTestCommand(), swapCommand(), rollbackCommand(), {
			Name:      "inspect",
			Usage:     "validate a plugin and show its language, ABI version, exports, imports and size",
			ArgsUsage: "PLUGIN.wasm",
			Description: "Compiles and validates the module exactly as `run` would, so an error here is the error `run` would give.\n\n" +
				"Example:\n  helios-wasm plugin inspect build/plugins/go/count.wasm",
			Flags: engineFlags(),
			Action: func(c *cli.Context) error {
				if err := requireArgs(c, 1, "one PLUGIN.wasm"); err != nil {
					return err
				}
				return withPluginArg(c, func(_ context.Context, p *host.Plugin) error {
					info := p.Info()
					w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintf(w, "plugin:\t%s\n", info.Name)
					fmt.Fprintf(w, "sha256:\t%s\n", info.Hash)
					fmt.Fprintf(w, "size:\t%d bytes\n", info.Size)
					fmt.Fprintf(w, "language:\t%s\n", wasmbin.DescribeOrigin(p.Bytes()))
					fmt.Fprintf(w, "abi version:\t%d\n", info.ABIVersion)
					fmt.Fprintf(w, "memory:\t%s\n", info.Memory)
					fmt.Fprintf(w, "migrator:\t%v\n", info.Migrator)
					fmt.Fprintf(w, "window operator:\t%v\n", info.WindowClose)
					w.Flush()
					fmt.Println("exports:")
					for _, f := range info.Exports {
						fmt.Printf("  %s\n", f)
					}
					fmt.Println("imports:")
					for _, f := range info.Imports {
						fmt.Printf("  %s\n", f)
					}
					return nil
				})
			},
		}},
	}
}
