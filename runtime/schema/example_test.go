package schema_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

// Register two versions of a subject, see a breaking change refused, and
// migrate a record written with version 1 to version 2.
func Example() {
	dir, _ := os.MkdirTemp("", "schema-example")
	defer os.RemoveAll(dir)
	db, err := storage.Open(filepath.Join(dir, "data"), storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	reg := schema.New(db)

	v1 := `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"}]}`
	v2 := `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},
	        {"name":"customer_id","type":"integer","optional":true,"default":0}]}`
	for _, text := range []string{v1, v2} {
		v, _, err := reg.Register("orders", []byte(text))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("registered orders version", v.Number)
	}

	// Dropping amount breaks readers of version 2 under FULL.
	if err := reg.SetMode("orders", schema.Full); err != nil {
		log.Fatal(err)
	}
	err = reg.Check("orders", []byte(`{"name":"order","fields":[{"name":"order_id","type":"integer"},
	        {"name":"customer_id","type":"integer","optional":true,"default":0}]}`))
	var ie *schema.IncompatibleError
	if errors.As(err, &ie) {
		for _, c := range ie.Changes {
			fmt.Println(c)
		}
	}

	out, err := reg.Migrate(context.Background(), "orders", 1, 2, [][]byte{[]byte(`{"order_id":1,"amount":9.5}`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out[0]))
	// Output:
	// registered orders version 1
	// registered orders version 2
	// forward vs version 2, field amount: removed, but version 2 requires it (it has no default there)
	// {"order_id":1,"amount":9.5,"customer_id":0}
}
