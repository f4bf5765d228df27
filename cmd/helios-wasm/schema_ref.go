package main

import (
	"strconv"
	"strings"

	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

// schemaRef resolves SUBJECT[@VERSION] (default: the latest version) in the
// registry of db. what names the flag or field in errors.
func schemaRef(db *storage.DB, what, ref string) (*schema.Version, error) {
	subject, ver, hasVer := strings.Cut(ref, "@")
	if err := storage.ValidateName("subject", subject); err != nil {
		return nil, usagef("%s: %v", what, err)
	}
	reg := schema.New(db)
	if !hasVer {
		v, err := reg.Latest(subject)
		if err != nil {
			return nil, usagef("%s: %w (register it first: helios-wasm schema register --subject %s --file FILE)", what, err, subject)
		}
		return v, nil
	}
	n, err := strconv.Atoi(ver)
	if err != nil {
		return nil, usagef("%s %q: want SUBJECT[@VERSION], VERSION a number", what, ref)
	}
	v, err := reg.Get(subject, n)
	if err != nil {
		return nil, usagef("%s: %w", what, err)
	}
	return v, nil
}

// pipelineSchemas resolves a pipeline's reader and output schemas (empty:
// none).
func pipelineSchemas(db *storage.DB, in, out, inName, outName string) (reader, output *schema.Version, err error) {
	if in != "" {
		if reader, err = schemaRef(db, inName, in); err != nil {
			return nil, nil, err
		}
	}
	if out != "" {
		if output, err = schemaRef(db, outName, out); err != nil {
			return nil, nil, err
		}
	}
	return reader, output, nil
}
