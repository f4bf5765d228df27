// Command helios-wasm runs stream-processing pipelines whose operators are
// WebAssembly modules, with exactly-once commits into an embedded log.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1 // storage, I/O or another failure of the run
	exitInput   = 2 // usage error, bad plugin or bad input
	exitDamaged = 3 // the data directory is damaged or not a helios data directory
	// exitInterrupted: a second SIGINT/SIGTERM exited without committing
	// the batches in flight (128+SIGINT, as shells report an interrupt).
	exitInterrupted = 130
)

func main() {
	app := newApp()
	if err := app.Run(flagsFirst(app, os.Args)); err != nil {
		fmt.Fprintf(os.Stderr, "helios-wasm: error: %v%s\n", err, flagHint(err))
		os.Exit(exitCode(err))
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "helios-wasm",
		Usage:   "stream processing with WebAssembly operators and exactly-once commits",
		Version: version,
		Description: "Records flow from a source (a JSON Lines file, a topic of the embedded log, or stdin) through a WebAssembly\n" +
			"operator to a sink, in batches committed exactly once to the data directory (Pebble).\n\n" +
			"Example:\n  helios-wasm run --plugin build/plugins/go/uppercase.wasm --input file:in.jsonl --output file:out.jsonl",
		HideHelpCommand: true,
		Suggest:         true,
		ExitErrHandler:  func(*cli.Context, error) {}, // main reports errors and picks the exit code
		OnUsageError:    onUsageError,
		Flags:           logFlags(),
		Before:          setupLogging,
		Commands:        []*cli.Command{runCommand(), produceCommand(), consumeCommand(), topicsCommand(), pluginCommand(), dlqCommand(), lateCommand(), replayCommand(), statusCommand(), serveCommand(), schemaCommand(), healthcheckCommand()},
	}
}

var version = "0.1.0-dev"

// usageError marks a mistake in the command line.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// onUsageError makes a flag urfave/cli cannot parse (from the command line
// or its environment variable) a usage error (exit 2).
func onUsageError(_ *cli.Context, err error, _ bool) error { return usageError{err} }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// flagHint names the flag that addresses an error the libraries report in
// their own terms (they do not know the CLI's flags).
func flagHint(err error) string {
	switch {
	case errors.Is(err, storage.ErrLocked):
		return " (--data-dir chooses the data directory)"
	case errors.Is(err, storage.ErrNoTopic):
		return " (helios-wasm produce --topic creates a topic)"
	case errors.Is(err, host.ErrDeadline):
		return " (--batch-timeout sets the limit)"
	case errors.Is(err, runtime.ErrOutputModified), errors.Is(err, runtime.ErrOutputOwned):
		return " (--name names the pipeline)"
	case errors.Is(err, runtime.ErrAtLeastOnce):
		return " (--at-least-once accepts it; in a serve config, \"at_least_once\": true)"
	case errors.Is(err, runtime.ErrFleetDeadLetters):
		return " (helios-wasm swap replaces a running fleet's operator; dlq purge frees this data directory's copy)"
	}
	return ""
}

// exitCode maps an error to the documented exit status.
func exitCode(err error) int {
	var ue usageError
	var pe *host.PluginError
	var ec cli.ExitCoder // urfave/cli's own errors ("No help topic ...")
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, storage.ErrDamaged):
		return exitDamaged
	// urfave/cli exports no type for a missing required flag.
	case strings.HasPrefix(err.Error(), "Required flag"), errors.As(err, &ec):
		return exitInput
	case errors.As(err, &ue), errors.As(err, &pe),
		errors.Is(err, runtime.ErrBadInput), errors.Is(err, runtime.ErrRecordFailed), errors.Is(err, runtime.ErrOutputModified),
		errors.Is(err, runtime.ErrOutputOwned), errors.Is(err, runtime.ErrOutputBusy), errors.Is(err, runtime.ErrInputReplaced),
		errors.Is(err, runtime.ErrFleetDeadLetters):
		return exitInput
	default:
		return exitRuntime
	}
}
