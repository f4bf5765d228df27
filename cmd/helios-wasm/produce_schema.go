package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/logio"
	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

// produceWithSchema produces stdin with --schema SUBJECT[@VERSION]: every
// line validated, every record tagged, all or nothing.
func produceWithSchema(c *cli.Context, db *storage.DB, ti storage.TopicInfo) (int64, error) {
	v, err := schemaRef(db, "--schema", c.String("schema"))
	if err != nil {
		return 0, err
	}
	headers := abi.AppendKVBlock(nil, []abi.Header{{Key: []byte(schema.Header), Value: fmt.Appendf(nil, "%s/%d", v.Subject, v.Number)}})
	return logio.ProduceChecked(db, ti, os.Stdin, c.String("key-field"), headers, v.Validate)
}
