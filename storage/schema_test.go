package storage

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestSchemaKeys: subjects that prefix each other stay apart, versions list
// in numeric order, modes keep the default apart from subjects, and a
// committed version survives a crash that drops every unsynced byte.
func TestSchemaKeys(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db := openTest(t, fs)
	b := db.NewBatch()
	for _, s := range []string{"orders", "orders-v", "a"} {
		for _, v := range []uint64{1, 2, 256, 3} {
			if err := b.PutSchema(s, v, fmt.Appendf(nil, "%s@%d", s, v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.PutSchemaMode("", []byte("FULL"))
	b.PutSchemaMode("orders", []byte("NONE"))
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{}) // exactly what was synced
	db.Close()
	db = openTest(t, crashed)
	defer db.Close()

	subjects, err := db.SchemaSubjects()
	if err != nil || !slices.Equal(subjects, []string{"a", "orders", "orders-v"}) {
		t.Fatalf("subjects %q %v", subjects, err)
	}
	var got []string
	if err := db.ListSchemas("orders", func(v uint64, data []byte) error {
		got = append(got, fmt.Sprintf("%d=%s", v, data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1=orders@1", "2=orders@2", "3=orders@3", "256=orders@256"}; !slices.Equal(got, want) {
		t.Fatalf("versions %q, want %q", got, want)
	}
	if v, ok, _ := db.GetSchema("orders-v", 256); !ok || string(v) != "orders-v@256" {
		t.Fatalf("get: %q %v", v, ok)
	}
	for s, want := range map[string]string{"": "FULL", "orders": "NONE", "a": ""} {
		v, _, err := db.GetSchemaMode(s)
		if err != nil || string(v) != want {
			t.Fatalf("mode %q: %q %v, want %q", s, v, err, want)
		}
	}
}
