package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

func schemaCommand() *cli.Command {
	subject := func(required bool) cli.Flag {
		return &cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Required: required, Usage: "subject name ([A-Za-z0-9._-])"}
	}
	file := &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true, Usage: "schema `FILE`: the helios field list (.json) or an Avro record schema (.avsc)"}
	return &cli.Command{
		Name:  "schema",
		Usage: "register, check and evolve record schemas (subjects with versions and compatibility modes)",
		Description: "Schemas are Avro record schemas, written as Avro (.avsc) or as the helios field list\n" +
			"({\"name\":\"order\",\"fields\":[{\"name\":\"order_id\",\"type\":\"integer\"}]}). A new version must be compatible\n" +
			"with the subject's mode (BACKWARD by default, as in the Confluent Schema Registry).\n\n" +
			"Examples:\n  helios-wasm schema register --subject orders --file order-v1.json\n" +
			"  helios-wasm schema check --subject orders --file order-v2.json\n" +
			"  helios-wasm schema migrate --subject orders --from 1 --to 2 < v1.jsonl > v2.jsonl\n" +
			"  helios-wasm schema mode --subject orders FULL",
		Subcommands: []*cli.Command{
			{
				Name: "register", Usage: "add a schema as the subject's next version (refused, exit 1, when incompatible)",
				Description: "With --migrator, the version's records are migrated from the previous version by the module's\n" +
					"helios_migrate (abi.md, \"Schema migrators\") instead of the rules; the module is checked (its exports, that\n" +
					"it starts, and that every --sample line, a record at the previous version, migrates to a record of this\n" +
					"version) and stored with the version. The mode's backward check is the migrator's: the forward one still\n" +
					"applies. Registering a version's schema again with another module replaces its migrator (schema show lists\n" +
					"every registration). Migrators run sandboxed with the operators' default limits (128 MiB, 10 s per batch).",
				Flags: []cli.Flag{dataDirFlag(), subject(true), file,
					&cli.StringFlag{Name: "migrator", Usage: "`MODULE.wasm` migrating records from the previous version (exports helios_migrate)"},
					&cli.StringFlag{Name: "sample", Usage: "`FILE` of JSON lines at the previous version that --migrator must migrate (default: none)"}},
				Action: func(c *cli.Context) error {
					text, err := readSchemaFile(c)
					if err != nil {
						return err
					}
					if c.String("migrator") != "" {
						return registerMigrator(c, text)
					}
					if c.IsSet("sample") {
						return usagef("--sample: it is run through --migrator, which is not set")
					}
					return withRegistry(c, func(r registry) error {
						v, created, err := r.Register(c.String("subject"), text)
						if err != nil {
							return schemaErr(c.String("file"), err)
						}
						if !created {
							fmt.Printf("%s: identical to version %d; nothing registered\n", v.Subject, v.Number)
							return nil
						}
						fmt.Printf("registered %s version %d\n", v.Subject, v.Number)
						return nil
					})
				},
			},
			{
				Name: "list", Usage: "list the subjects, their latest version and mode", Flags: []cli.Flag{dataDirFlag()},
				Action: func(c *cli.Context) error {
					return withRegistry(c, func(r registry) error {
						subjects, err := r.Subjects()
						if err != nil {
							return err
						}
						w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
						fmt.Fprintln(w, "SUBJECT\tLATEST\tFORMAT\tMODE")
						for _, s := range subjects {
							v, err := r.Latest(s)
							if err != nil {
								return err
							}
							m, own, err := r.Mode(s)
							if err != nil {
								return err
							}
							fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", s, v.Number, v.Format, modeText(m, own))
						}
						return w.Flush()
					})
				},
			},
			{
				Name: "show", Usage: "print a version (default: the latest) as JSON, with its Avro form", ArgsUsage: "SUBJECT",
				Flags: []cli.Flag{dataDirFlag(), &cli.IntFlag{Name: "version", Aliases: []string{"v"}, Usage: "version number (default: the latest)"}},
				Action: func(c *cli.Context) error {
					subject, version, err := showArgs(c)
					if err != nil {
						return err
					}
					return withRegistry(c, func(r registry) error {
						var v *schema.Version
						var err error
						if version > 0 {
							v, err = r.Get(subject, version)
						} else {
							v, err = r.Latest(subject)
						}
						if err != nil {
							return schemaErr("", err)
						}
						a, _, err := schema.Parse([]byte(v.Text))
						if err != nil {
							return err
						}
						avroJSON, err := json.Marshal(a)
						if err != nil {
							return err
						}
						enc := json.NewEncoder(os.Stdout)
						enc.SetIndent("", "  ")
						return enc.Encode(struct {
							*schema.Version
							Text json.RawMessage `json:"schema"`
							Avro json.RawMessage `json:"avro"`
						}{v, json.RawMessage(v.Text), avroJSON})
					})
				},
			},
			{
				Name: "check", Usage: "would this schema be accepted as the next version? exit 0, or 1 listing the breaking changes",
				Flags: []cli.Flag{dataDirFlag(), subject(true), file},
				Action: func(c *cli.Context) error {
					text, err := readSchemaFile(c)
					if err != nil {
						return err
					}
					return withRegistry(c, func(r registry) error {
						if err := r.Check(c.String("subject"), text); err != nil {
							return schemaErr(c.String("file"), err)
						}
						m, own, err := r.Mode(c.String("subject"))
						if err != nil {
							return err
						}
						fmt.Printf("compatible: %s may be registered as the next version of %s (mode %s)\n", c.String("file"), c.String("subject"), modeText(m, own))
						return nil
					})
				},
			},
			{
				Name:  "migrate",
				Usage: "read JSON lines written with version --from on stdin, write them at version --to on stdout",
				Description: "Fields are added with their defaults, removed, renamed through aliases and integers promoted to floats,\n" +
					"one version at a time. A line that does not match version --from stops the command (exit 2) with its line\n" +
					"number; the lines before it have been written.",
				Flags: []cli.Flag{dataDirFlag(), subject(true),
					&cli.IntFlag{Name: "from", Required: true, Usage: "version the input was written with"},
					&cli.IntFlag{Name: "to", Required: true, Usage: "version to write"},
					&cli.IntFlag{Name: "batch-size", Value: 1000, Usage: "lines migrated per step"}},
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return usagef("schema migrate reads stdin and takes no arguments, got %q", c.Args().Slice())
					}
					return withRegistry(c, func(r registry) error {
						return migrateLines(c.Context, r, c.String("subject"), c.Int("from"), c.Int("to"), max(c.Int("batch-size"), 1), os.Stdin, os.Stdout)
					})
				},
			},
			{
				Name: "mode", Usage: "show or set the compatibility mode of a subject, or the default (no --subject)", ArgsUsage: "[MODE]",
				Description: "MODE is BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE.\n" +
					"The default mode, used by subjects without their own, is BACKWARD until set.",
				Flags: []cli.Flag{dataDirFlag(), subject(false)},
				Action: func(c *cli.Context) error {
					if c.NArg() > 1 {
						return usagef("schema mode: want at most one MODE, got %q", c.Args().Slice())
					}
					s := c.String("subject")
					name := s
					if name == "" {
						name = "default"
					}
					return withRegistry(c, func(r registry) error {
						if c.NArg() == 1 {
							m, err := schema.ParseMode(c.Args().First())
							if err != nil {
								return usageError{err}
							}
							if err := r.SetMode(s, m); err != nil {
								return err // validated above: a storage failure
							}
							fmt.Printf("%s: %s\n", name, m)
							return nil
						}
						m, own, err := r.Mode(s)
						if err != nil {
							return err
						}
						fmt.Printf("%s: %s\n", name, modeText(m, own || s == ""))
						return nil
					})
				},
			},
		},
	}
}

// registerMigrator is `schema register --migrator`.
func registerMigrator(c *cli.Context, text []byte) error {
	wasm, err := os.ReadFile(c.String("migrator"))
	if err != nil {
		return usagef("--migrator: %v", err)
	}
	var sample [][]byte
	var lines []int
	if f := c.String("sample"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return usagef("--sample: %v", err)
		}
		for i, l := range bytes.Split(b, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				sample, lines = append(sample, bytes.TrimSuffix(l, []byte("\r"))), append(lines, i+1)
			}
		}
		if len(sample) == 0 {
			return usagef("--sample %s: no records (want JSON lines at the previous version)", f)
		}
	}
	return withRegistry(c, func(r registry) error {
		v, created, err := r.RegisterMigrator(c.Context, c.String("subject"), text, wasm, sample)
		var re *schema.RecordError
		switch {
		case errors.As(err, &re) && errors.Is(err, schema.ErrBadRecord):
			return usagef("--sample %s line %d: %v", c.String("sample"), lines[re.Index], re.Err)
		case errors.As(err, &re):
			return fmt.Errorf("--migrator %s: --sample %s line %d: %w", c.String("migrator"), c.String("sample"), lines[re.Index], re.Err)
		case errors.Is(err, schema.ErrBadMigrator):
			return fmt.Errorf("--migrator %s: %w", c.String("migrator"), err)
		case err != nil:
			return schemaErr(c.String("file"), err)
		}
		m := v.Migrator()
		switch {
		case !created:
			fmt.Printf("%s version %d: migrator %s already in use; nothing registered\n", v.Subject, v.Number, m.Hash[:12])
		case len(v.Migrators) > 1:
			fmt.Printf("%s version %d: migrator %s replaces %s (registration %d)\n", v.Subject, v.Number, m.Hash[:12], v.Migrators[len(v.Migrators)-2].Hash[:12], len(v.Migrators))
		default:
			fmt.Printf("registered %s version %d with migrator %s (%d sample records migrated)\n", v.Subject, v.Number, m.Hash[:12], m.Sample)
		}
		return nil
	})
}

// showArgs takes SUBJECT and --version N in either order (urfave/cli stops
// parsing flags at the first argument).
func showArgs(c *cli.Context) (subject string, version int, err error) {
	version, explicit := c.Int("version"), c.IsSet("version")
	args := c.Args().Slice()
	if len(args) == 3 && (args[1] == "--version" || args[1] == "-v") {
		if version, err = strconv.Atoi(args[2]); err != nil {
			return "", 0, usagef("--version %q: want a version number", args[2])
		}
		args, explicit = args[:1], true
	}
	if len(args) != 1 {
		return "", 0, usagef("schema show: want SUBJECT [--version N], got %q", args)
	}
	if explicit && version < 1 {
		return "", 0, usagef("--version %d: versions start at 1", version)
	}
	if err := storage.ValidateName("subject", args[0]); err != nil {
		return "", 0, usageError{err}
	}
	return args[0], version, nil
}

func modeText(m schema.Mode, own bool) string {
	if own {
		return string(m)
	}
	return string(m) + " (default)"
}

func readSchemaFile(c *cli.Context) ([]byte, error) {
	text, err := os.ReadFile(c.String("file"))
	if err != nil {
		return nil, usagef("--file: %v", err)
	}
	return text, nil
}

// schemaErr maps registry errors to exit codes: a malformed file, an
// unknown subject or version are the caller's (2); an incompatible schema
// is a verdict (1).
func schemaErr(file string, err error) error {
	switch {
	case errors.Is(err, schema.ErrBadSchema) && file != "":
		return usagef("%s: %w", file, err)
	case errors.Is(err, schema.ErrBadSchema), errors.Is(err, schema.ErrNotFound), errors.Is(err, schema.ErrBadRecord):
		return usageError{err}
	case errors.Is(err, schema.ErrIncompatible):
		return err
	}
	return err
}

// registry is what the schema commands use: schema.Registry on the data
// directory, or admin.SchemaClient through the process holding it.
type registry interface {
	Register(subject string, text []byte) (*schema.Version, bool, error)
	RegisterMigrator(ctx context.Context, subject string, text, wasm []byte, sample [][]byte) (*schema.Version, bool, error)
	Check(subject string, text []byte) error
	Subjects() ([]string, error)
	Get(subject string, n int) (*schema.Version, error)
	Latest(subject string) (*schema.Version, error)
	Mode(subject string) (schema.Mode, bool, error)
	SetMode(subject string, m schema.Mode) error
	Migrate(ctx context.Context, subject string, from, to int, records [][]byte) ([][]byte, error)
}

// withRegistry opens the data directory's schema registry, or, while a
// running process holds the directory, reaches it through that process.
func withRegistry(c *cli.Context, fn func(r registry) error) error {
	if s := c.String("subject"); s != "" {
		if err := storage.ValidateName("subject", s); err != nil {
			return usagef("--subject: %v", err)
		}
	}
	db, err := openDB(c)
	if errors.Is(err, storage.ErrLocked) {
		dir, _ := filepath.Abs(c.String("data-dir"))
		return fn(admin.NewSchemaClient(dir))
	}
	if err != nil {
		return err
	}
	defer db.Close()
	reg := schema.New(db).WithHostConfig(host.Config{CacheDir: defaultCacheDirEnv(), Logger: slog.Default()})
	defer reg.Close(context.Background())
	return fn(reg)
}

// defaultCacheDirEnv is --cache-dir's default, for commands without the flag.
func defaultCacheDirEnv() string {
	if d, ok := os.LookupEnv("HELIOS_CACHE_DIR"); ok {
		return d
	}
	return defaultCacheDir()
}

// migrateLines migrates JSON lines in batches; blank lines are skipped.
func migrateLines(ctx context.Context, r registry, subject string, from, to, batch int, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	w := bufio.NewWriter(out)
	defer w.Flush()
	var recs [][]byte
	var lines []int
	n, written := 0, 0
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		res, err := r.Migrate(ctx, subject, from, to, recs)
		var re *schema.RecordError
		if errors.As(err, &re) {
			return usagef("stdin line %d: %v", lines[re.Index], re.Err)
		}
		if err != nil {
			return schemaErr("", err)
		}
		for _, b := range res {
			w.Write(b)
			w.WriteByte('\n')
		}
		written += len(res)
		recs, lines = recs[:0], lines[:0]
		return nil
	}
	for sc.Scan() {
		n++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		recs = append(recs, bytes.Clone(sc.Bytes()))
		lines = append(lines, n)
		if len(recs) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin line %d: %w", n+1, err)
	}
	if err := flush(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "migrated %d records of %s from version %d to %d\n", written, subject, from, to)
	return nil
}
