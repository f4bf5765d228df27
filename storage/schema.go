package storage

import (
	"bytes"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// Schema registry keys (see keys.go):
//
//	'R' subject 0x00 version(u64 BE) -> registered schema version (opaque here)
//	'M' subject                      -> compatibility mode; the empty subject holds the default
//	'G' sha256 (hex)                 -> schema migrator module bytes (content-addressed)
//
// Migrator modules are kept apart from the plugin modules ('B'), whose
// history pruning deletes the modules no pipeline uses.
// The registry (runtime/schema) gives the records their meaning; storage only
// keeps them in order and writes them in synced batches.

func schemaKey(subject string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(nameKey(nil, tagSchema, subject), version)
}

func schemaModeKey(subject string) []byte { return append([]byte{tagSchemaMode}, subject...) }

// PutSchema stages version of subject.
func (b *Batch) PutSchema(subject string, version uint64, data []byte) error {
	return b.b.Set(schemaKey(subject, version), data, nil)
}

// PutSchemaMode stages the compatibility mode of subject ("" for the default).
func (b *Batch) PutSchemaMode(subject string, mode []byte) error {
	return b.b.Set(schemaModeKey(subject), mode, nil)
}

// DeleteSchemaMode stages the removal of subject's own mode.
func (b *Batch) DeleteSchemaMode(subject string) error {
	return b.b.Delete(schemaModeKey(subject), nil)
}

func migratorKey(hash string) []byte { return append([]byte{tagMigrator}, hash...) }

// PutMigrator stages a schema migrator module under its content hash.
func (b *Batch) PutMigrator(hash string, wasm []byte) error {
	return b.b.Set(migratorKey(hash), wasm, nil)
}

// GetMigrator returns the migrator module stored under hash.
func (db *DB) GetMigrator(hash string) ([]byte, bool, error) {
	return db.get(migratorKey(hash))
}

// GetSchema returns one version of subject.
func (db *DB) GetSchema(subject string, version uint64) ([]byte, bool, error) {
	return db.get(schemaKey(subject, version))
}

// GetSchemaMode returns subject's mode ("" for the default).
func (db *DB) GetSchemaMode(subject string) ([]byte, bool, error) {
	return db.get(schemaModeKey(subject))
}

// ListSchemas calls fn for every version of subject, in version order.
func (db *DB) ListSchemas(subject string, fn func(version uint64, data []byte) error) error {
	return db.listNumbered(nameKey(nil, tagSchema, subject), fn)
}

// SchemaSubjects lists the subjects with at least one version, sorted.
func (db *DB) SchemaSubjects() ([]string, error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{tagSchema}, UpperBound: []byte{tagSchema + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for valid := it.First(); valid; {
		k := it.Key()
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			valid = it.Next()
			continue
		}
		out = append(out, string(k[1:i]))
		valid = it.SeekGE(prefixEnd(k[:i+1])) // the next subject
	}
	return out, it.Error()
}
