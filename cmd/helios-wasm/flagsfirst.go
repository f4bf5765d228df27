package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst lets flags follow positional arguments (`plugin swap NEW.wasm
// --config k=v`): urfave/cli stops parsing flags at the first argument, so
// for a command that takes positional arguments (it has ArgsUsage) the
// arguments after the command path are reordered, flags (with their values)
// first, positionals after, each in their original order. Everything from a
// "--" on is left as it is. args[0] is the program name.
func flagsFirst(app *cli.App, args []string) []string {
	cmds, flags := app.Commands, app.Flags
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args
		}
		if isFlag(a) {
			if takesValue(flags, a) {
				i++
			}
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			return args
		}
		if len(cmd.Subcommands) > 0 {
			cmds, flags = cmd.Subcommands, cmd.Flags
			continue
		}
		if cmd.ArgsUsage == "" {
			return args
		}
		out := append([]string(nil), args[:i+1]...)
		return append(out, reorder(args[i+1:], cmd.Flags)...)
	}
	return args
}

// reorder puts the flags of rest (and their values) before its positionals.
func reorder(rest []string, flags []cli.Flag) []string {
	var fl, pos []string
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			pos = append(pos, rest[j:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			continue
		}
		fl = append(fl, a)
		if takesValue(flags, a) && j+1 < len(rest) {
			fl = append(fl, rest[j+1])
			j++
		}
	}
	return append(fl, pos...)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// takesValue reports whether flag a ("-c", "--config"; not "--config=k=v")
// is one of flags and consumes the next argument. Unknown flags take none:
// urfave/cli reports them.
func takesValue(flags []cli.Flag, a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	name := strings.TrimLeft(a, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				v, ok := f.(cli.DocGenerationFlag)
				return ok && v.TakesValue()
			}
		}
	}
	return false
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
