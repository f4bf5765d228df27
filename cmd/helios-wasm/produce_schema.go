package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/logio"
	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

// produceWithSchema produces stdin with --schema SUBJECT[@VERSION]: every
// line validated, every record tagged, all or nothing.
func produceWithSchema(c *cli.Context, db *storage.DB, ti storage.TopicInfo) (int64, error) {
	subject, ver, hasVer := strings.Cut(c.String("schema"), "@")
	if err := storage.ValidateName("subject", subject); err != nil {
		return 0, usagef("--schema: %v", err)
	}
	reg := schema.New(db)
	var v *schema.Version
	var err error
	if hasVer {
		n, perr := strconv.Atoi(ver)
		if perr != nil {
			return 0, usagef("--schema %q: want SUBJECT[@VERSION]", c.String("schema"))
		}
		v, err = reg.Get(subject, n)
	} else {
		v, err = reg.Latest(subject)
	}
	if err != nil {
		return 0, usagef("--schema: %w", err)
	}
	headers := abi.AppendKVBlock(nil, []abi.Header{{Key: []byte(schema.Header), Value: fmt.Appendf(nil, "%s/%d", v.Subject, v.Number)}})
	return logio.ProduceChecked(db, ti, os.Stdin, c.String("key-field"), headers, v.Validate)
}
